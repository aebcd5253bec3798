"""The capture sink: where a surrogate's captured rows and input summaries go.

The store writer is created on the first captured row, once, under a lock:
threads making their first calls at the same time share one writer (whose
appends are themselves locked) instead of racing to create the file.
``summarize`` mode keeps per-variable running statistics here too, saved
next to the store as ``<store>.summary.json``.

Example
-------
>>> from phasm.bindings.spec import Scalar, Spec
>>> spec = Spec.from_declarations("m.f", {"x": Scalar()}, {"y": Scalar()})
>>> sink = CaptureSink("m.f", "captures/f.h5", flush_rows=16)
>>> sink.append_row(spec, [1.0], [2.0]), sink.append_batch(spec, [np.ones(3)], [np.zeros(3)])
(1, 3)
>>> sink.close(); len(sink.store())
4
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from phasm.bindings.spec import Spec, Variable
from phasm.errors import SpecError, StoreError
from phasm.store.running_stats import RunningStats

if TYPE_CHECKING:
    from phasm.store.reader import CaptureStore
    from phasm.store.writer import CaptureWriter

__all__ = ["CaptureSink"]


class CaptureSink:
    """Captured rows of one surrogate into its store (``path``; ``None``: rows are counted, not kept)."""

    def __init__(self, name: str, path: str | os.PathLike[str] | None, *, flush_rows: int = 1024) -> None:
        self.name = name
        self.path = Path(path) if path is not None else None
        self.flush_rows = int(flush_rows)
        self.summaries: dict[str, RunningStats] = {}
        self._writer: CaptureWriter | None = None
        self._lock = threading.Lock()

    def writer(self, spec: Spec) -> CaptureWriter | None:
        """The store writer, created on first use (under the lock: one writer however many threads ask)."""
        writer = self._writer
        if writer is None and self.path is not None:
            with self._lock:
                writer = self._writer
                if writer is None:
                    from phasm.store.writer import CaptureWriter  # h5py loads on the first capture only

                    writer = self._writer = CaptureWriter(self.path, spec, flush_rows=self.flush_rows)
        return writer

    def append_row(self, spec: Spec, ins: Sequence[Any], outs: Sequence[Any]) -> int:
        """Capture one call; returns the rows kept (0 without a store)."""
        writer = self.writer(spec)
        if writer is None:
            return 0
        try:
            writer.append_row(ins, outs)
        except SpecError as exc:
            raise SpecError(f"{self.name}: {exc}") from None
        return 1

    def append_batch(self, spec: Spec, ins: Sequence[Any], outs: Sequence[Any]) -> int:
        """Capture a batch of ``n`` rows (arrays ``(n, *shape)`` in spec order); returns the rows kept."""
        writer = self.writer(spec)
        if writer is None:
            return 0
        try:
            writer.append_batch(ins, outs)
        except SpecError as exc:
            raise SpecError(f"{self.name}: {exc}") from None
        return _rows(ins, outs)

    def flush(self) -> None:
        """Write buffered rows to the store now."""
        writer = self._writer
        if writer is not None:
            writer.flush()

    def close(self) -> None:
        """Flush and close the store (a later capture reopens it); save the summaries, if any."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        if self.summaries and self.path is not None:
            self.save_summary()

    def store(self) -> CaptureStore:
        """The store as a :class:`~phasm.store.CaptureStore`, buffered rows flushed first."""
        from phasm.store.reader import CaptureStore

        if self.path is None:
            raise StoreError(f"{self.name}: no store configured; pass store= to phasm.surrogate")
        self.flush()
        return CaptureStore(self.path)

    # -- summarize mode ------------------------------------------------------------

    def summarize(self, prefix: str, variables: Sequence[Variable], values: Sequence[Any]) -> None:
        """Add one call's (or batch's) values to the running statistics ``"<prefix>:<name>"``."""
        for v, value in zip(variables, values):
            self.summaries.setdefault(f"{prefix}:{v.name}", RunningStats()).update(np.asarray(value).reshape(-1))

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per-variable statistics (``"in:x"``, ``"out:y"`` keys)."""
        return {k: s.summary() for k, s in self.summaries.items()}

    def save_summary(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write :meth:`summary` as JSON (default: next to the store, ``<store>.summary.json``)."""
        if path is None:
            if self.path is None:
                raise StoreError(f"{self.name}: give a path (no store configured)")
            path = self.path.with_name(self.path.name + ".summary.json")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"function": self.name, "variables": self.summary()}, indent=1))
        return path


def _rows(ins: Sequence[Any], outs: Sequence[Any]) -> int:
    first = next(iter((*ins, *outs)), None)
    return 0 if first is None else len(first)
