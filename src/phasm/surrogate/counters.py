"""A surrogate's counters (what ``fn.stats`` reports): calls, rows, answers, fallbacks, time, shadow errors.

Handlers add to them directly (plain attribute increments: the cheapest
bookkeeping there is); :meth:`Counters.snapshot` freezes them into a
:class:`~phasm.surrogate.stats.SurrogateStats`.

Example
-------
>>> c = Counters()
>>> c.calls += 2; c.original_calls += 2
>>> str(c.snapshot()).split(", ")[:2]
['calls 2', 'original 2']
"""

from __future__ import annotations

import numpy as np

from phasm.bindings.spec import Spec
from phasm.gate.tolerance import Tolerance
from phasm.surrogate.stats import SurrogateStats

__all__ = ["Counters"]


class Counters:
    """Running counts of one surrogate (rows, for batched functions); see :class:`SurrogateStats`."""

    __slots__ = ("calls", "rows", "original_calls", "model_calls", "model_rows", "fallbacks", "captured_rows",
                 "time_original", "time_model", "shadow_rows", "shadow_misses", "shadow_error")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.calls = 0
        self.rows = 0
        self.original_calls = 0
        self.model_calls = 0
        self.model_rows = 0
        self.fallbacks = 0
        self.captured_rows = 0
        self.time_original = 0.0
        self.time_model = 0.0
        self.shadow_rows = 0
        self.shadow_misses = 0
        self.shadow_error: dict[str, dict[str, float]] = {}

    def record_shadow(self, spec: Spec, tolerance: Tolerance | None, Y_pred: np.ndarray, Y_true: np.ndarray) -> None:
        """Add the model's errors on rows the original also answered (misses count against ``tolerance``)."""
        tol = tolerance or Tolerance(rel=0.01)
        errors = tol.variable_errors(spec, Y_true, Y_pred)
        self.shadow_rows += len(Y_true)
        if tolerance is not None:
            self.shadow_misses += int(tol.misses(spec, Y_true, Y_pred).sum())
        for name, (rel, mabs) in errors.items():
            acc = self.shadow_error.setdefault(name, {"max_rel": 0.0, "sum_rel": 0.0, "max_abs": 0.0})
            acc["max_rel"] = max(acc["max_rel"], float(rel.max()))
            acc["sum_rel"] += float(rel.sum())
            acc["max_abs"] = max(acc["max_abs"], float(mabs.max()))

    def snapshot(self, *, gate: str = "", certified_bound: float | None = None, tolerance: bool = False) -> SurrogateStats:
        """The counters now, with the gate in use and its certified miss-rate bound (``None``: none certified)."""
        shadow = {
            k: {"max_rel": v["max_rel"], "mean_rel": v["sum_rel"] / max(self.shadow_rows, 1), "max_abs": v["max_abs"]}
            for k, v in self.shadow_error.items()
        }
        return SurrogateStats(
            calls=self.calls, rows=self.rows, original_calls=self.original_calls, model_calls=self.model_calls,
            model_rows=self.model_rows, fallbacks=self.fallbacks, captured_rows=self.captured_rows,
            time_original_s=self.time_original, time_model_s=self.time_model, shadow_rows=self.shadow_rows,
            shadow_misses=self.shadow_misses, shadow_error=shadow, gate=gate, certified_bound=certified_bound, tolerance=tolerance,
        )
