"""A calibrated trust gate for functions with variable-length inputs (hits, particles, clusters).

The gate works on a fixed-width summary of each call (the fixed inputs, then
per set the element mean and the element count: ``summarize`` of the input
layout, :class:`~phasm.bindings.layout.RaggedLayout`): a :class:`DomainGate` learns the
summaries' range and distance to the training calls, and a
:class:`ConformalGate` with the ``distance`` score certifies, on held-out
calls, the distance threshold below which the share of answers beyond the
tolerance stays under ``max_miss_rate`` (same statement and method as for
fixed-shape inputs).  The model's answers are computed once, on the real
variable-length rows, and handed to the inner gate.

Example
-------
>>> gate = RaggedConformalGate(phasm.Tolerance(rel=0.05)).fit(X_cal, Y_cal, art, X_train=X_tr)  # doctest: +SKIP
>>> Y, trusted = gate.predict_accept(X_new, art)                                               # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from phasm.bindings.layout import input_layout
from phasm.bindings.spec import Spec, Variable
from phasm.gate.base import Gate, finite_rows
from phasm.gate.conformal import ConformalGate
from phasm.gate.domain import DomainGate
from phasm.gate.tolerance import Tolerance


class _Answers:
    """Stands in for the model inside the inner gate: returns answers already computed
    on the variable-length rows that the summary rows it is given stand for."""

    has_members = False  # the inner gate scores by distance
    has_std = False

    def __init__(self, Y: np.ndarray, spec: Any) -> None:
        self.Y = np.asarray(Y, np.float32)
        self.spec = spec

    def predict(self, S: np.ndarray) -> np.ndarray:
        if len(S) != len(self.Y):
            raise ValueError(f"ragged gate: {len(S)} summary rows for {len(self.Y)} answers")
        return self.Y


def summary_spec(spec: Spec, width: int) -> Spec:
    """The spec the inner gate sees: one summary input of ``width`` features, the function's outputs."""
    outputs = tuple(replace(v, direction="out", optic=None) for v in spec.outputs)
    return Spec(spec.function, (Variable("_summary", (width,), np.dtype(np.float32), "in"), *outputs))


class RaggedConformalGate(Gate):
    """Certified trust gate over per-call summaries of variable-length inputs.

    Parameters: as :class:`ConformalGate` (``tolerance``, ``confidence``), the score is ``distance``.
    """

    kind = "ragged-conformal"

    def __init__(self, tolerance: Tolerance, *, confidence: float = 0.95, seed: int = 0) -> None:
        self.tolerance = tolerance
        self.confidence = float(confidence)
        self.seed = int(seed)

    def fit(self, X_cal: Any, Y_cal: np.ndarray, model: Any, *, X_train: Any, spec: Any = None) -> "RaggedConformalGate":
        """Calibrate on held-out calls ``(X_cal, Y_cal)`` (raw inputs, true outputs) the model never saw."""
        spec = spec if spec is not None else model.spec
        layout = input_layout(spec)
        S_cal, S_train = layout.summarize(X_cal), layout.summarize(X_train)
        spec = summary_spec(spec, S_cal.shape[1])
        Y_cal = np.asarray(Y_cal, np.float64)
        keep = finite_rows(S_cal) & finite_rows(Y_cal)  # filtered here so answers and rows stay aligned
        Y_pred = np.asarray(model.predict(layout.take(X_cal, np.flatnonzero(keep))), np.float32)
        self.inner_ = ConformalGate(self.tolerance, confidence=self.confidence, score="distance",
                                    domain=DomainGate(), seed=self.seed)
        # Only the calibration rows' answers exist here, so thresholds are tuned on a share of them
        # (tune_on_train would ask for answers on training rows).
        self.inner_.fit(S_cal[keep], Y_cal[keep], _Answers(Y_pred, spec), X_train=S_train[finite_rows(S_train)],
                        spec=spec, tune_on_train=False)
        self.report_ = self.inner_.report_  # the certified bound, the expected fallback rate
        return self

    def predict_accept(self, X: Any, model: Any) -> tuple[np.ndarray, np.ndarray]:
        """The model's answers on ``X`` and the mask of trusted calls."""
        Y = np.asarray(model.predict(X), np.float32)
        return Y, self.accept(X, Y, model)

    def accept(self, X: Any, Y: np.ndarray, model: Any) -> np.ndarray:
        S = model.layout.summarize(X)
        trusted = self.inner_.predict_accept(S, _Answers(Y, self.inner_._spec))[1]
        return trusted & finite_rows(S) & finite_rows(Y)

    def describe(self) -> str:
        return f"certified gate over summaries of variable-length inputs ({self.inner_.describe()})"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "confidence": self.confidence, "seed": self.seed,
                "tolerance": self.tolerance.to_json(), "inner": self.inner_.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "RaggedConformalGate":
        try:
            self = cls(Tolerance.from_json(d["tolerance"]), confidence=d.get("confidence", 0.95), seed=d.get("seed", 0))
            self.inner_ = ConformalGate.from_json(d["inner"])
            self.report_ = self.inner_.report_
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"ragged gate record is incomplete or malformed: {exc}") from None
        return self
