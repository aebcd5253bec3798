"""Rows of a capture store for the report: a bounded sample, and the data summary drawn from it.

A report never loads a whole store: it reads every row up to ``max_rows``, else ``max_rows``
rows in eight evenly spaced runs (so a store that drifted over time shows its whole history).
Per-variable statistics (min, max, mean, std) stream over every row.

Example
-------
>>> import numpy as np
>>> run_starts(100, 1000, 40).tolist()
[100, 228, 356, 484, 611, 739, 867, 995]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from phasm.bindings.ragged import RaggedArray
from phasm.bindings.spec import Spec, Variable
from phasm.report.model import DataColumn, DataSummary
from phasm.store.reader import CaptureStore

RUNS = 8
MAX_HISTOGRAM_VALUES = 200_000


@dataclass
class Rows:
    """Sampled rows: per-variable values (arrays, or RaggedArray for variable-length ones) and row numbers."""

    inputs: dict[str, Any]
    outputs: dict[str, Any]
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


def run_starts(start: int, stop: int, max_rows: int) -> np.ndarray:
    """First rows of ``RUNS`` evenly spaced runs of ``max_rows // RUNS`` rows within ``[start, stop)``."""
    size = max(1, max_rows // RUNS)
    return np.linspace(start, stop - size, RUNS).round().astype(np.int64)


def read_rows(store: CaptureStore, max_rows: int, start: int = 0, stop: int | None = None) -> Rows:
    """Rows ``[start, stop)`` of ``store``: all of them up to ``max_rows``, else evenly spaced runs."""
    stop = len(store) if stop is None else min(stop, len(store))
    start = max(0, min(start, stop))
    spec = store.spec
    assert spec is not None
    if stop - start <= max_rows:
        ins, outs = store.read(start, stop)
        return Rows(ins, outs, np.arange(start, stop))
    size = max(1, max_rows // RUNS)
    parts = [(s, *store.read(int(s), int(s) + size)) for s in run_starts(start, stop, max_rows)]
    rows = np.concatenate([np.arange(s, s + size) for s, _, _ in parts])
    return Rows(_concat(spec.inputs, [p[1] for p in parts]), _concat(spec.outputs, [p[2] for p in parts]), rows)


def _concat(variables: tuple[Variable, ...], parts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for v in variables:
        name = str(v.name)
        chunks = [p[name] for p in parts]
        out[name] = RaggedArray.concat(chunks) if v.ragged else np.concatenate(chunks)
    return out


def take(rows: Rows, mask: np.ndarray) -> Rows:
    """The rows where ``mask`` is true (fixed-shape variables)."""
    def pick(values: dict[str, Any]) -> dict[str, Any]:
        return {k: np.asarray(v)[mask] for k, v in values.items()}

    return Rows(pick(rows.inputs), pick(rows.outputs), rows.rows[mask])


def describe_shape(shape: tuple[int, ...]) -> str:
    """``()`` -> 'scalar', ``(32, 32)`` -> '32x32'."""
    return "scalar" if not shape else "x".join(str(s) for s in shape)


def column(v: Variable, role: str, values: Any, stats: dict[str, Any], seed: int = 0) -> DataColumn:
    """One variable's side of the sampled rows: histogram values and one number per row."""
    name = str(v.name)
    if v.ragged:
        ragged: RaggedArray = values
        elements = np.asarray(ragged.values, np.float64).reshape(-1)
        per_row: np.ndarray | None = np.diff(ragged.offsets).astype(np.float64)
        label = f"elements per call of {name}"
    else:
        arr = np.asarray(values, np.float64)
        elements = arr.reshape(-1)
        n = arr.shape[0]
        if not v.shape:
            per_row, label = arr.reshape(n), name
        else:
            flat = arr.reshape(n, -1)
            with np.errstate(invalid="ignore"):
                per_row = flat.mean(axis=1)
            label = f"mean of {name} over its {flat.shape[1]} elements"
    elements = elements[np.isfinite(elements)]
    if len(elements) > MAX_HISTOGRAM_VALUES:
        elements = np.random.default_rng(seed).choice(elements, MAX_HISTOGRAM_VALUES, replace=False)
    return DataColumn(key=f"{role}:{name}", name=name, role=role, shape=tuple(v.shape), stats=stats,
                      sample=elements, per_row=per_row, per_row_label=label)


def summarize(store: CaptureStore, rows: Rows) -> DataSummary:
    """The store's rows, statistics over all of them, and histogram values from the sampled ones."""
    spec = store.spec
    assert spec is not None
    stats = store.statistics()
    empty = {"count": 0, "nonfinite": 0, "min": float("nan"), "max": float("nan"), "mean": float("nan"),
             "std": float("nan")}
    columns = [column(v, role, values[str(v.name)], stats.get(f"{role}:{v.name}", empty))
               for role, variables, values in (("in", spec.inputs, rows.inputs), ("out", spec.outputs, rows.outputs))
               for v in variables]
    return DataSummary(store=str(store.path), n_rows=len(store), n_files=len(store.files), sampled_rows=len(rows),
                       columns=columns)


def has_ragged(spec: Spec) -> bool:
    """Whether any variable has a variable length (the model then takes set inputs, not a matrix)."""
    return any(v.ragged for v in spec.variables)
