"""Read a capture store (main file plus shards) as one: arrays, batches, statistics.

Every file is validated before use: it must carry a phasm format marker, a
spec, and datasets of the shapes and dtypes that spec declares.  Only rows
below each file's committed row count are read, so a file left by a crashed
writer reads back as everything it committed.

Example
-------
>>> from phasm.bindings.spec import Scalar, Spec
>>> from phasm.store.writer import CaptureWriter
>>> spec = Spec.from_declarations("m.f", {"x": Scalar()}, {"y": Scalar()})
>>> with CaptureWriter("captures/f.h5", spec) as w:
...     w.append_batch([np.arange(3.0)], [np.arange(3.0) ** 2])
>>> store = CaptureStore("captures/f.h5")
>>> inputs, outputs = store.read()                     # dicts of arrays
>>> outputs["y"].tolist()
[0.0, 1.0, 4.0]
>>> sum(len(o["y"]) for _, o in store.iter_batches(2))  # batches: stores larger than memory
3
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from phasm.bindings.spec import Spec, SpecError, Variable, pack
from phasm.errors import StoreError
from phasm.store.writer import FORMAT_VERSION, ROWS_DATASET, dataset_name, shard_dir


def _open_h5(path: Path) -> Any:
    import h5py

    try:
        return h5py.File(path, "r", locking=False)
    except OSError:
        # A writer is still running, or crashed: SWMR read sees what it committed.
        try:
            return h5py.File(path, "r", swmr=True, locking=False)
        except OSError as exc:
            raise StoreError(f"{path}: not a readable HDF5 file ({exc})") from None


@dataclass
class _FilePart:
    path: Path
    rows: int


class CaptureStore:
    """A logical capture store: the main file and its shards, read as one."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        files = []
        if self.path.is_file():
            files.append(self.path)
        sdir = shard_dir(self.path)
        if sdir.is_dir():
            files.extend(sorted(sdir.glob("*.h5")))
        if not files:
            raise FileNotFoundError(f"no capture store at {self.path} (nor shards in {sdir})")
        self.spec: Spec | None = None
        self.attrs: dict[str, Any] = {}
        self._parts: list[_FilePart] = []
        for p in files:
            self._parts.append(self._validate(p))
        assert self.spec is not None

    def _validate(self, path: Path) -> _FilePart:
        with _open_h5(path) as f:
            if "phasm_format" not in f.attrs or "spec" not in f.attrs:
                raise StoreError(f"{path}: not a phasm capture store (no phasm_format/spec attributes)")
            fmt = int(f.attrs["phasm_format"])
            if fmt > FORMAT_VERSION:
                raise StoreError(f"{path}: store format {fmt} is newer than this phasm understands ({FORMAT_VERSION})")
            try:
                spec = Spec.from_json(json.loads(f.attrs["spec"]))
            except (json.JSONDecodeError, SpecError) as exc:
                raise StoreError(f"{path}: unreadable spec attribute: {exc}") from None
            if self.spec is None:
                self.spec = spec
                self.attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items() if k != "spec"}
            else:
                self.spec.check_compatible(spec, f"shard {path}")
            if ROWS_DATASET not in f:
                raise StoreError(f"{path}: missing row counter {ROWS_DATASET!r}")
            rows = int(f[ROWS_DATASET][0])
            for group, variables in (("in", spec.inputs), ("out", spec.outputs)):
                for v in variables:
                    name = dataset_name(group, v)
                    if v.ragged:
                        from phasm.store import ragged

                        problem = ragged.validate(f, name, v, rows, path)
                        if problem:
                            raise StoreError(problem)
                        continue
                    if name not in f:
                        raise StoreError(f"{path}: dataset {name!r} for variable {v.name!r} is missing")
                    ds = f[name]
                    if ds.shape[1:] != v.shape or ds.dtype != v.dtype:
                        raise StoreError(
                            f"{path}: dataset {name!r} has shape {ds.shape[1:]} dtype {ds.dtype}, "
                            f"spec says {v.shape} {v.dtype}"
                        )
                    if ds.shape[0] < rows:
                        raise StoreError(f"{path}: dataset {name!r} has {ds.shape[0]} rows, {rows} committed")
        return _FilePart(path, rows)

    # -- size and structure ---------------------------------------------

    def __len__(self) -> int:
        return sum(p.rows for p in self._parts)

    @property
    def files(self) -> list[Path]:
        return [p.path for p in self._parts]

    # -- reading ----------------------------------------------------------

    def read(self, start: int = 0, stop: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Rows ``[start, stop)`` as ``(inputs, outputs)``: dicts of arrays ``(n, *shape)``.

        Ragged variables come back as :class:`~phasm.bindings.ragged.RaggedArray`
        (``.to_awkward()`` for an awkward array, ``.to_padded()`` for arrays + mask).
        """
        spec = self.spec
        assert spec is not None
        stop = len(self) if stop is None else min(stop, len(self))
        chunks_in: dict[str, list[np.ndarray]] = {v.name: [] for v in spec.inputs}  # type: ignore[misc]
        chunks_out: dict[str, list[np.ndarray]] = {v.name: [] for v in spec.outputs}  # type: ignore[misc]
        offset = 0
        for part in self._parts:
            lo, hi = max(start - offset, 0), min(stop - offset, part.rows)
            if lo < hi:
                with _open_h5(part.path) as f:
                    for v in spec.inputs:
                        chunks_in[v.name].append(_read_rows(f, "in", v, lo, hi))  # type: ignore[index]
                    for v in spec.outputs:
                        chunks_out[v.name].append(_read_rows(f, "out", v, lo, hi))  # type: ignore[index]
            offset += part.rows
        return _concat(spec.inputs, chunks_in), _concat(spec.outputs, chunks_out)

    def iter_batches(self, batch_rows: int = 65536) -> Iterator[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
        """Yield ``(inputs, outputs)`` batches of at most ``batch_rows`` rows, in store order."""
        total = len(self)
        for start in range(0, total, batch_rows):
            yield self.read(start, start + batch_rows)

    def matrices(self, start: int = 0, stop: int | None = None, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
        """Rows as flat model matrices ``X (n, n_in_features)``, ``Y (n, n_out_features)``."""
        spec = self.spec
        assert spec is not None
        if any(v.ragged for v in spec.inputs):
            raise StoreError(
                f"{self.path}: the spec has variable-length (ragged) inputs, which do not fit a flat matrix; "
                "use read() (RaggedArray values) or phasm.train.ragged.RaggedData"
            )
        ins, outs = self.read(start, stop)
        n = next(iter(ins.values())).shape[0]
        return pack(spec.inputs, ins, n, dtype), pack(spec.outputs, outs, n, dtype)

    def iter_matrices(self, batch_rows: int = 65536, dtype: Any = np.float32) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        total = len(self)
        for start in range(0, total, batch_rows):
            yield self.matrices(start, start + batch_rows, dtype)

    # -- statistics -------------------------------------------------------

    def statistics(self, batch_rows: int = 65536) -> dict[str, dict[str, Any]]:
        """Per-variable min, max, mean, std over all rows, streaming.

        Keys are ``"in:<name>"`` and ``"out:<name>"``.
        """
        spec = self.spec
        assert spec is not None
        acc: dict[str, RunningStats] = {}
        for ins, outs in self.iter_batches(batch_rows):
            for prefix, values in (("in", ins), ("out", outs)):
                for name, arr in values.items():
                    arr = getattr(arr, "values", arr)  # a RaggedArray: statistics over its elements
                    acc.setdefault(f"{prefix}:{name}", RunningStats()).update(arr.reshape(-1))
        return {k: s.summary() for k, s in acc.items()}

    def __repr__(self) -> str:
        return f"CaptureStore({str(self.path)!r}, rows={len(self)}, files={len(self._parts)})"


def _read_rows(f: Any, group: str, v: Variable, lo: int, hi: int) -> Any:
    if v.ragged:
        from phasm.store import ragged

        return ragged.read(f, dataset_name(group, v), lo, hi)
    return f[dataset_name(group, v)][lo:hi]


def _concat(variables: tuple[Variable, ...], chunks: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    out = {}
    for v in variables:
        parts = chunks[v.name]  # type: ignore[index]
        if v.ragged:
            from phasm.bindings.ragged import RaggedArray

            out[v.name] = (RaggedArray.concat(parts) if parts  # type: ignore[index]
                           else RaggedArray(np.empty((0, *v.shape), v.dtype), np.zeros(1, np.int64)))
            continue
        if not parts:
            out[v.name] = np.empty((0, *v.shape), v.dtype)  # type: ignore[index]
        else:
            out[v.name] = parts[0] if len(parts) == 1 else np.concatenate(parts)  # type: ignore[index]
    return out


class RunningStats:
    """Streaming count/min/max/mean/std (Chan's parallel update), for scalars or per feature."""

    def __init__(self) -> None:
        self.nonfinite = 0
        self.n = 0
        self.mean: Any = 0.0
        self.m2: Any = 0.0
        self.min: Any = np.inf
        self.max: Any = -np.inf

    def update(self, x: np.ndarray, axis: int | None = None) -> None:
        """Fold in values ``x``; ``axis=0`` keeps per-feature statistics of a ``(n, k)`` block."""
        x = np.asarray(x, dtype=np.float64)
        if axis is None:
            finite = np.isfinite(x)
            if not finite.all():  # NaN/inf rows are kept in the store but not in the statistics
                self.nonfinite += int((~finite).sum())
                x = x[finite]
        k = x.size if axis is None else x.shape[axis]
        if k == 0:
            return
        mean = x.mean(axis=axis)
        m2 = ((x - (mean if axis is None else np.expand_dims(mean, axis))) ** 2).sum(axis=axis)
        total = self.n + k
        delta = mean - self.mean
        self.mean = self.mean + delta * k / total
        self.m2 = self.m2 + m2 + delta**2 * self.n * k / total
        self.n = total
        self.min = np.minimum(self.min, x.min(axis=axis))
        self.max = np.maximum(self.max, x.max(axis=axis))

    @property
    def std(self) -> Any:
        return np.sqrt(self.m2 / self.n) if self.n else np.nan

    def summary(self) -> dict[str, Any]:
        def f(v: Any) -> Any:
            return v.tolist() if isinstance(v, np.ndarray) else float(v)

        return {"count": self.n, "nonfinite": self.nonfinite, "min": f(self.min), "max": f(self.max), "mean": f(self.mean), "std": f(self.std)}
