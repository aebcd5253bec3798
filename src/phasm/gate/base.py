"""The trust gate contract: which rows of a batch may the model answer.

A gate sees the raw model inputs ``X (n, n_in)``, the model's raw answer
``Y (n, n_out)`` and the model itself (for ensemble members or distances), and
returns a boolean mask of the rows it trusts.  Rows it rejects go to the
original function.  Every gate rejects non-finite inputs and outputs: a NaN
never reaches the caller from the model.

Gates follow scikit-learn's shape: parameters in the constructor, ``fit``
learns from held-out data (learned state ends in ``_``), and the learned
state is stored in the model artefact as JSON.

Example
-------
>>> import numpy as np
>>> FiniteGate().accept(np.array([[1.0], [np.nan]]), np.array([[2.0], [3.0]]), None).tolist()
[True, False]
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np


class Gate:
    """Base class: trust only rows whose inputs and outputs are finite."""

    kind: ClassVar[str] = "finite"
    registry: ClassVar[dict[str, type["Gate"]]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        Gate.registry[cls.kind] = cls

    def accept(self, X: np.ndarray, Y: np.ndarray, model: Any) -> np.ndarray:
        """Boolean mask ``(n,)`` of rows the model may answer."""
        return finite_rows(X) & finite_rows(Y)

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


Gate.registry["finite"] = FiniteGate


def finite_rows(A: np.ndarray) -> np.ndarray:
    A = np.asarray(A)
    return np.isfinite(A.reshape(len(A), -1)).all(axis=1)


def gate_from_json(d: dict[str, Any] | None) -> Gate:
    """Rebuild a gate from its artefact record (``None``: the finite gate)."""
    if not d:
        return FiniteGate()
    try:
        cls = Gate.registry[d["kind"]]
    except KeyError:
        raise ValueError(f"unknown gate kind {d.get('kind')!r}; known: {sorted(Gate.registry)}") from None
    return cls.from_json(d)

