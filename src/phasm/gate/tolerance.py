"""The user's tolerance: how wrong a model answer may be, and how often.

A call's answer for one output variable is *within tolerance* when its
relative L2 error ``||pred - true|| / ||true||`` is at most ``rel`` or its
largest absolute element error is at most ``abs`` (whichever are given;
either passing is enough).  ``max_miss_rate`` bounds the share of calls
answered by the model that are out of tolerance.  ``per_output`` overrides
``(rel, abs)`` for named outputs.

Example
-------
>>> import numpy as np
>>> from phasm.bindings.spec import Scalar, Spec
>>> spec = Spec.from_declarations("m.f", {"x": Scalar()}, {"y": Scalar()})
>>> Tolerance(rel=0.01).misses(spec, np.array([[1.0], [1.0]]), np.array([[1.005], [1.1]])).tolist()
[False, True]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from phasm.bindings.spec import Spec


@dataclass(frozen=True)
class Tolerance:
    """Error tolerance per call and the bound on the share of calls that may exceed it."""

    rel: float | None = 0.01
    abs: float | None = None
    max_miss_rate: float = 0.01
    per_output: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rel is None and self.abs is None and not self.per_output:
            raise ValueError("Tolerance: give rel=, abs= or per_output=")
        for name, value in (("rel", self.rel), ("abs", self.abs)):
            if value is not None and not (value >= 0):
                raise ValueError(f"Tolerance: {name} must be >= 0, got {value}")
        if not 0.0 <= self.max_miss_rate < 1.0:
            raise ValueError(f"Tolerance: max_miss_rate must be in [0, 1), got {self.max_miss_rate}")

    def limits(self, name: str) -> tuple[float | None, float | None]:
        return self.per_output.get(name, (self.rel, self.abs))

    def variable_errors(self, spec: Spec, Y_true: np.ndarray, Y_pred: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per output variable: (relative L2 error, max abs error) per row."""
        out = {}
        col = 0
        n = len(Y_true)
        for v in spec.outputs:
            t = np.asarray(Y_true[:, col : col + v.size], np.float64).reshape(n, -1)
            p = np.asarray(Y_pred[:, col : col + v.size], np.float64).reshape(n, -1)
            col += v.size
            diff = p - t
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.linalg.norm(diff, axis=1) / np.linalg.norm(t, axis=1)
            rel = np.where(np.linalg.norm(diff, axis=1) == 0, 0.0, rel)
            out[v.name] = (np.nan_to_num(rel, nan=np.inf), np.nan_to_num(np.abs(diff).max(axis=1, initial=0.0), nan=np.inf))
        return out  # type: ignore[return-value]

    def misses(self, spec: Spec, Y_true: np.ndarray, Y_pred: np.ndarray) -> np.ndarray:
        """Boolean ``(n,)``: rows where any output is out of tolerance."""
        miss = np.zeros(len(Y_true), bool)
        for name, (rel, mabs) in self.variable_errors(spec, Y_true, Y_pred).items():
            r_lim, a_lim = self.limits(name)
            ok = np.zeros(len(Y_true), bool)
            if r_lim is not None:
                ok |= rel <= r_lim
            if a_lim is not None:
                ok |= mabs <= a_lim
            miss |= ~ok
        return miss

    def to_json(self) -> dict[str, Any]:
        return {"rel": self.rel, "abs": self.abs, "max_miss_rate": self.max_miss_rate,
                "per_output": {k: list(v) for k, v in self.per_output.items()}}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Tolerance":
        return cls(d.get("rel"), d.get("abs"), float(d.get("max_miss_rate", 0.01)),
                   {k: (v[0], v[1]) for k, v in d.get("per_output", {}).items()})
