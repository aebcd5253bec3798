"""The trust gate contract: which rows of a batch may the model answer.

A gate sees the raw model inputs ``X`` (``n`` rows of the spec's input layout),
the model's raw answer ``Y (n, n_out)`` and the model itself (for ensemble
members or distances), and returns a boolean mask of the rows it trusts.  Rows
it rejects go to the original function.  Non-finite inputs and outputs are
never trusted: ``auto`` mode adds that check to every gate's answer, so a NaN
never reaches the caller from the model.

Gates follow scikit-learn's shape: parameters in the constructor, ``fit``
learns from held-out data (learned state ends in ``_``), and the learned
state is stored in the model artefact as JSON.  A model folder names its
gate by ``kind``, looked up in a fixed table of classes
(:mod:`phasm.gate.registry`).

Example
-------
>>> import numpy as np
>>> FiniteGate().accept(np.array([[1.0], [np.nan]]), np.array([[2.0], [3.0]]), None).tolist()
[True, False]
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from phasm.gate.certify import CalibrationReport

__all__ = ["FiniteGate", "Gate", "all_finite", "finite_rows"]


class Gate:
    """Base class: trust only rows whose inputs and outputs are finite.

    Subclasses set ``kind`` (the name a model folder records) and override
    ``accept``, or ``predict_accept`` when they can compute the answers and
    the mask in one pass (an ensemble's members evaluated once for both).
    ``report_``: the calibration report of a certified gate, ``None`` otherwise.
    """

    kind: ClassVar[str] = "finite"
    #: its mask is False for every row with a non-finite input (``auto`` mode then skips that check)
    refuses_nonfinite_inputs: ClassVar[bool] = False
    report_: "CalibrationReport | None" = None

    def accept(self, X: Any, Y: np.ndarray, model: Any) -> np.ndarray:
        """Boolean mask ``(n,)`` of rows the model may answer."""
        return finite_rows(X) & finite_rows(Y)

    def predict_accept(self, X: Any, model: Any) -> tuple[np.ndarray, np.ndarray | bool]:
        """The model's answers on ``X`` and the rows to trust, in one call (what ``auto`` mode calls).

        The mask may be ``True``: every row this gate has no objection to (``auto`` mode still
        refuses non-finite inputs and answers).
        """
        Y = model.predict(X)
        return Y, self.accept(X, Y, model)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Gate":
        return cls()

    def describe(self) -> str:
        return "finite inputs and outputs"


class FiniteGate(Gate):
    """The minimal gate: rejects NaN/inf inputs and outputs, trusts everything else."""

    kind = "finite"

    def predict_accept(self, X: Any, model: Any) -> tuple[np.ndarray, np.ndarray | bool]:
        return model.predict(X), True  # finiteness is its only test, and auto mode applies it to every gate


def finite_rows(A: Any) -> np.ndarray:
    """Boolean ``(n,)``: rows of a matrix (or of ``(n, ...)`` arrays) whose every entry is finite."""
    A = np.asarray(A)
    return np.asarray(np.isfinite(A.reshape(len(A), -1)).all(axis=1))


def all_finite(A: np.ndarray) -> bool:
    """Whether every entry of an array is finite (a few entries: plain Python, faster than a ufunc pass)."""
    if A.size <= SMALL:
        return all(map(math.isfinite, A.reshape(-1).tolist()))
    return bool(np.isfinite(A).all())


SMALL = 32
