"""Read a capture store (main file plus shards) as one: arrays, batches, statistics.

Every file is validated before use (:mod:`phasm.store.check`): it must carry
a phasm format marker, a spec matching its hash, and datasets of the shapes
and dtypes that spec declares.  Only rows below each file's consistent row
count are read, and every block of rows read is checked against the file's
commit log, so a file left by a crashed writer reads back as everything it
committed, and a truncated or altered one is refused with the number of rows
that still verify (``phasm repair`` keeps them).  A file in the shard folder
that is not a phasm store at all (empty, garbage, a link) is skipped with a
:class:`~phasm.store.layout.StoreWarning` naming it, and listed in
:attr:`CaptureStore.skipped`.

Example
-------
>>> import tempfile
>>> from phasm.bindings.spec import Scalar, Spec
>>> from phasm.store.writer import CaptureWriter
>>> path = Path(tempfile.mkdtemp()) / "price.h5"
>>> with CaptureWriter(path, Spec.from_declarations("m.f", {"x": Scalar()}, {"y": Scalar()})) as w:
...     w.append_batch([np.arange(5.0)], [np.arange(5.0) ** 2])
>>> store = CaptureStore(path)
>>> inputs, outputs = store.read()                       # dicts of arrays
>>> len(store), outputs["y"].tolist()
(5, [0.0, 1.0, 4.0, 9.0, 16.0])
>>> [len(b[0]["x"]) for b in store.iter_batches(2)]      # larger than memory: in batches
[2, 2, 1]
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from phasm.bindings.ragged import RaggedArray
from phasm.bindings.spec import Spec, Variable, pack
from phasm.errors import StoreDamaged, StoreError
from phasm.store.check import H5_ERRORS, Damage, FileState, NotAStoreError, inspect_file, open_for_read, read_verified, salvage
from phasm.store.files import store_files
from phasm.store.layout import StoreWarning, shard_dir
from phasm.store.running_stats import RunningStats

__all__ = ["CaptureStore", "StoreError"]

Arrays = dict[str, Any]


class CaptureStore:
    """A logical capture store: the main file and its shards, read as one."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        files, self.skipped = store_files(self.path)
        if not files and not self.skipped:
            raise FileNotFoundError(f"no capture store at {self.path} (nor shards in {shard_dir(self.path)})")
        self._parts: list[FileState] = []
        self.attrs: dict[str, Any] = {}
        spec: Spec | None = None
        for p in files:
            try:
                state = inspect_file(p, self.path)
            except NotAStoreError as exc:
                if p == self.path:
                    raise StoreError(str(exc)) from None
                self.skipped.append((p, str(exc).removeprefix(f"{p}: ")))
                continue
            if spec is None:
                spec, self.attrs = state.spec, state.attrs
            else:
                spec.check_compatible(state.spec, f"shard {p}")
            self._parts.append(state)
        for p, reason in self.skipped:
            warnings.warn(f"{p}: skipped: {reason}", StoreWarning, stacklevel=2)
        if spec is None:
            raise StoreError(f"{self.path}: no readable capture files ({len(self.skipped)} skipped: "
                             + "; ".join(f"{p.name}: {r}" for p, r in self.skipped) + ")")
        self.spec: Spec = spec

    # -- size and structure ---------------------------------------------

    def __len__(self) -> int:
        return sum(p.rows for p in self._parts)

    @property
    def files(self) -> list[Path]:
        """The files read, main file first."""
        return [p.path for p in self._parts]

    # -- reading ----------------------------------------------------------

    def read(self, start: int = 0, stop: int | None = None) -> tuple[Arrays, Arrays]:
        """Rows ``[start, stop)`` as ``(inputs, outputs)``: dicts of arrays ``(n, *shape)``.

        Ragged variables come back as :class:`~phasm.bindings.ragged.RaggedArray`
        (``.to_awkward()`` for an awkward array, ``.to_padded()`` for arrays + mask).
        Raises :class:`~phasm.errors.StoreDamaged` if a block of rows does not verify.
        """
        spec = self.spec
        stop = len(self) if stop is None else min(stop, len(self))
        n_in = len(spec.inputs)
        chunks: list[list[Any]] = [[] for _ in (*spec.inputs, *spec.outputs)]
        offset = 0
        for part in self._parts:
            lo, hi = max(start - offset, 0), min(stop - offset, part.rows)
            if lo < hi:
                for i, arr in enumerate(self._read_part(part, lo, hi)):
                    chunks[i].append(arr)
            offset += part.rows
        return (_concat(spec.inputs, chunks[:n_in]), _concat(spec.outputs, chunks[n_in:]))

    def _read_part(self, part: FileState, lo: int, hi: int) -> list[Any]:
        try:
            with open_for_read(part.path) as f:
                return read_verified(f, part, lo, hi)
        except Damage as exc:
            reason = exc.reason
        except (StoreError, *H5_ERRORS) as exc:
            reason = f"unreadable ({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})"
        kept = sum(b - a for a, b in salvage(part)[0])
        raise StoreDamaged(f"{part.path}: {reason}: the file is damaged; {kept} of {part.rows} rows are recoverable; "
                           f"`phasm repair {self.path}` keeps them", path=part.path, recoverable=kept,
                           committed=part.committed)

    def iter_batches(self, batch_rows: int = 65536) -> Iterator[tuple[Arrays, Arrays]]:
        """Yield ``(inputs, outputs)`` batches of at most ``batch_rows`` rows, in store order."""
        total = len(self)
        for start in range(0, total, batch_rows):
            yield self.read(start, start + batch_rows)

    def matrices(self, start: int = 0, stop: int | None = None, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
        """Rows as flat model matrices ``X (n, n_in_features)``, ``Y (n, n_out_features)``."""
        spec = self.spec
        if any(v.ragged for v in spec.inputs):
            raise StoreError(
                f"{self.path}: the spec has variable-length (ragged) inputs, which do not fit a flat matrix; "
                "use read() (RaggedArray values) or phasm.train.ragged.RaggedData"
            )
        ins, outs = self.read(start, stop)
        n = next(iter(ins.values())).shape[0]
        return pack(spec.inputs, ins, n, dtype), pack(spec.outputs, outs, n, dtype)

    def iter_matrices(self, batch_rows: int = 65536, dtype: Any = np.float32) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(X, Y)`` matrices of at most ``batch_rows`` rows, in store order."""
        total = len(self)
        for start in range(0, total, batch_rows):
            yield self.matrices(start, start + batch_rows, dtype)

    # -- statistics -------------------------------------------------------

    def statistics(self, batch_rows: int = 65536) -> dict[str, dict[str, Any]]:
        """Per-variable min, max, mean, std over all rows, streaming.

        Keys are ``"in:<name>"`` and ``"out:<name>"``.
        """
        acc: dict[str, RunningStats] = {}
        for ins, outs in self.iter_batches(batch_rows):
            for prefix, values in (("in", ins), ("out", outs)):
                for name, arr in values.items():
                    flat = arr.values if isinstance(arr, RaggedArray) else arr  # ragged: over its elements
                    acc.setdefault(f"{prefix}:{name}", RunningStats()).update(flat.reshape(-1))
        return {k: s.summary() for k, s in acc.items()}

    def __repr__(self) -> str:
        return f"CaptureStore({str(self.path)!r}, rows={len(self)}, files={len(self._parts)})"


def _concat(variables: tuple[Variable, ...], chunks: list[list[Any]]) -> Arrays:
    out: Arrays = {}
    for v, parts in zip(variables, chunks):
        name = str(v.name)
        if v.ragged:
            out[name] = (RaggedArray.concat(parts) if parts
                         else RaggedArray(np.empty((0, *v.shape), v.dtype), np.zeros(1, np.int64)))
        elif not parts:
            out[name] = np.empty((0, *v.shape), v.dtype)
        else:
            out[name] = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return out
