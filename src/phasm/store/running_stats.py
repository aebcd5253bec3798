"""Streaming per-variable statistics (count, min, max, mean, std), shared by the store, training and the wrapper.

Example
-------
>>> s = RunningStats()
>>> s.update(np.array([1.0, 2.0, np.nan])); s.update(np.array([3.0]))
>>> s.summary()["mean"], s.summary()["nonfinite"]
(2.0, 1)
"""

from __future__ import annotations

from typing import Any

import numpy as np


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

        return {"count": self.n, "nonfinite": self.nonfinite, "min": f(self.min), "max": f(self.max),
                "mean": f(self.mean), "std": f(self.std)}
