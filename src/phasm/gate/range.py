"""The default gate without a tolerance: trust only inputs inside the captured range.

``auto`` mode without a tolerance certifies no accuracy, but it still refuses
to extrapolate: :class:`RangeGate` trusts a call only when every input feature
(for variable-length inputs, every feature of the per-call summary) lies in
the range seen in the captures, widened by a margin calibrated as the
:class:`~phasm.gate.domain.DomainGate` calibrates its own (how far held-out
rows reach beyond the range; without them, how far half of the captures
reach beyond the other half's range).  Everything else falls back to the
original function.  With a tolerance, the certified
:class:`~phasm.gate.conformal.ConformalGate` takes its place.

Example
-------
>>> X = np.random.default_rng(0).uniform(0.5, 2.0, (1000, 2))
>>> gate = RangeGate().fit(X)
>>> gate.accept(np.array([[1.0, 1.0], [1.0, 0.02], [np.nan, 1.0]]), np.zeros((3, 1)), None).tolist()
[True, False, False]
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from phasm.errors import GateError
from phasm.gate.base import Gate, finite_rows

__all__ = ["RangeGate", "range_gate_for_store"]

SAMPLE_ROWS = 200_000  # rows read from a store to fit the range and calibrate its margin
PYTHON_BELOW = 16  # features of one row below which plain Python compares faster than numpy


class RangeGate(Gate):
    """Trusts finite rows inside the captured input range, widened by a calibrated margin.

    Parameters
    ----------
    margin: widen the range by this fraction of its width on each side; ``None`` (default):
        calibrated (see the module docstring).
    quantile: share of held-out in-distribution rows the calibrated margin keeps.
    seed: seed of the half-sample split used without held-out rows.

    Learned: ``low_``, ``high_`` (the widened range) and ``margin_``.  No accuracy bound is
    certified by this gate: ``report_`` is ``None``.
    """

    kind = "range"
    refuses_nonfinite_inputs = True  # NaN compares False and the bounds are finite

    def __init__(self, margin: float | None = None, quantile: float = 0.999, seed: int = 0) -> None:
        self.margin = margin
        self.quantile = float(quantile)
        self.seed = int(seed)

    def fit(self, X_train: np.ndarray, X_held: np.ndarray | None = None) -> "RangeGate":
        """Learn the widened range from raw model input rows (summaries, for variable-length inputs).

        The margin is calibrated as :class:`~phasm.gate.domain.DomainGate` calibrates its own: at
        least ``5 / n``; the ``quantile`` of how far the held-out rows ``X_held`` reach beyond the
        range (in widths, worst feature); without them (and with at least 200 rows), of how far a
        random half of the rows reaches beyond the range of the other half.
        """
        X = np.asarray(X_train, np.float64)
        if X.ndim != 2:
            raise GateError(f"RangeGate.fit: X_train must be (n, features), got shape {X.shape}")
        X = X[finite_rows(X)]
        if len(X) < 2:
            raise GateError(f"RangeGate.fit: need at least 2 finite rows, got {len(X)}")
        lo, hi = X.min(0), X.max(0)
        margin = self.margin
        if margin is None:
            margin = 5.0 / len(X)
            if X_held is not None:
                margin = max(margin, self._reach(np.asarray(X_held, np.float64), lo, hi - lo))
            elif len(X) >= 200:
                half = np.random.default_rng(self.seed).permutation(len(X))
                A, B = X[half[: len(X) // 2]], X[half[len(X) // 2 :]]
                margin = max(margin, self._reach(B, A.min(0), A.max(0) - A.min(0)))
        width = hi - lo
        self._set(lo - margin * width, hi + margin * width, margin)
        return self

    def _reach(self, H: np.ndarray, lo: np.ndarray, width: np.ndarray) -> float:
        """The ``quantile`` of how far rows of ``H`` reach beyond ``[lo, lo + width]``, in widths (worst varying feature)."""
        H = H[finite_rows(H)]
        varying = width > 0
        if not len(H) or not varying.any():
            return 0.0
        below = (lo[varying] - H[:, varying]) / width[varying]
        above = (H[:, varying] - lo[varying] - width[varying]) / width[varying]
        return float(np.quantile(np.maximum(np.maximum(below, above).max(1), 0.0), self.quantile))

    def _set(self, low: np.ndarray, high: np.ndarray, margin: float) -> None:
        self.low_ = np.asarray(low, np.float64)
        self.high_ = np.asarray(high, np.float64)
        self.margin_ = float(margin)
        # float32 bounds rounded outwards (no value the float64 range accepts is refused), for model inputs,
        # and plain floats for one short row.
        self._low32 = np.nextafter(self.low_.astype(np.float32), np.float32(-np.inf))
        self._high32 = np.nextafter(self.high_.astype(np.float32), np.float32(np.inf))
        short = len(self.low_) < PYTHON_BELOW
        self._low_list: list[float] | None = self._low32.tolist() if short else None
        self._high_list: list[float] | None = self._high32.tolist() if short else None

    def in_range(self, S: Any) -> np.ndarray:
        """Boolean ``(n,)``: rows of the matrix ``S`` inside the widened range (NaN is outside)."""
        self._check()
        S = np.asarray(S)
        S2 = S.reshape(len(S), -1)
        if S2.shape[1] != len(self.low_):
            raise GateError(f"RangeGate: inputs have {S2.shape[1]} features, the gate was fitted on {len(self.low_)}")
        low, high = (self._low32, self._high32) if S2.dtype == np.float32 else (self.low_, self.high_)
        with np.errstate(invalid="ignore"):
            return np.asarray(((S2 >= low) & (S2 <= high)).all(axis=1))

    def accept(self, X: Any, Y: np.ndarray, model: Any) -> np.ndarray:
        """Finite rows inside the range (``X``: a matrix of model inputs or of their summaries)."""
        return self.in_range(X) & finite_rows(Y)

    def predict_accept(self, X: Any, model: Any) -> tuple[np.ndarray, np.ndarray | bool]:
        """The model's answers and the rows inside the range (the model's input layout summarizes ``X``)."""
        Y = model.predict(X)
        low, high = self._low_list, self._high_list
        if low is not None and high is not None and type(X) is np.ndarray and X.shape[0] == 1:
            # One short row (the latency-critical call): compare Python floats, no array passes.
            xs = X[0].tolist()
            inside = all(map(operator.le, low, xs)) and all(map(operator.le, xs, high))
            return Y, True if inside else np.zeros(1, bool)
        return Y, self.in_range(model.layout.summarize(X))

    def _check(self) -> None:
        if "low_" not in self.__dict__:
            raise GateError("RangeGate: call fit() first (or load a fitted gate)")

    def to_json(self) -> dict[str, Any]:
        self._check()
        return {"kind": self.kind, "margin": self.margin, "quantile": self.quantile, "seed": self.seed,
                "margin_": self.margin_, "low": self.low_.tolist(), "high": self.high_.tolist()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "RangeGate":
        try:
            self = cls(d.get("margin"), float(d.get("quantile", 0.999)), int(d.get("seed", 0)))
            low, high = np.asarray(d["low"], np.float64), np.asarray(d["high"], np.float64)
            margin = float(d["margin_"])
        except (KeyError, TypeError, ValueError) as exc:
            raise GateError(f"range gate record is incomplete or malformed: {exc}") from None
        if low.ndim != 1 or low.shape != high.shape or not (np.all(low <= high) and np.isfinite(low).all()
                                                             and np.isfinite(high).all()):
            raise GateError("range gate record: low/high must be finite vectors of one length with low <= high")
        self._set(low, high, margin)
        return self

    def describe(self) -> str:
        if "low_" not in self.__dict__:
            return "captured input range (not fitted)"
        return (f"captured input range, widened by {self.margin_:.3g} of its width; "
                "no accuracy bound certified (give a tolerance to certify one)")


def range_gate_for_store(store: Any, layout: Any, *, sample_rows: int = SAMPLE_ROWS, seed: int = 0) -> RangeGate:
    """A :class:`RangeGate` fitted on the model inputs captured in ``store`` (a
    :class:`~phasm.store.CaptureStore`), summarized by the spec's input ``layout``.

    Stores of more than ``sample_rows`` rows are read as evenly spaced blocks of that many rows.
    """
    n = len(store)
    if n < 2:
        raise GateError(f"store {store.path} has {n} rows: too few to learn the captured input range")
    step = max(1, -(-n // sample_rows))
    block = 8192
    parts = []
    for start in range(0, n, block * step):
        ins, _ = store.read(start, min(n, start + block))
        parts.append(layout.summarize(layout.pack_batch(ins, len(next(iter(ins.values()))))))
    S = np.concatenate(parts)
    return RangeGate(seed=seed).fit(S[finite_rows(S)])
