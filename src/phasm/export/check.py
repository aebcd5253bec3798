"""Does the compiled C answer and decide as phasm's Python does?  Row by row, on the same inputs.

Python's side is what a wrapped function computes: ``model`` mode (``ModelArtefact.predict``) for
the answers, ``auto`` mode (the gate's ``predict_accept``, NaN/inf never trusted) for the
decisions.  Disagreements are explained by how close the row sits to a threshold: the C gate
computes what Python computes, but not always in the same order of float operations, so a score
within rounding of its threshold can fall on either side.

Example
-------
>>> result = compare(art, NativeModel(lib, "price"), sample_rows(art, 10000))   # doctest: +SKIP
>>> print(result)                                                               # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from phasm.export.native import NativeModel

REL = 1e-5


@dataclass
class CheckResult:
    """How the C code compares with Python on ``rows`` inputs."""

    rows: int
    max_rel_error: float  # worst ||c - py|| / ||py|| over rows and output variables (model mode)
    within_rel: float  # share of rows with every output variable within REL relative
    max_scaled_error: float  # worst |c - py| / output scale (the training data's std)
    decisions_equal: float  # share of rows where C's accept equals Python auto mode's
    python_accepted: float
    c_accepted: float
    gated_max_rel_error: float  # answers of accepted rows (auto mode) compared likewise
    disagreements: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.rows} rows: answers (model mode) within {REL:g} relative on {self.within_rel:.4%} of rows, "
                 f"worst {self.max_rel_error:.2e} relative ({self.max_scaled_error:.2e} of the output's scale); "
                 f"gate decisions equal on {self.decisions_equal:.4%} (Python accepts {self.python_accepted:.2%}, "
                 f"C {self.c_accepted:.2%}); accepted answers worst {self.gated_max_rel_error:.2e} relative"]
        lines += [f"  differs: {d}" for d in self.disagreements[:10]]
        return "\n".join(lines)


def sample_rows(art: Any, n: int, seed: int = 0) -> np.ndarray:
    """``n`` random rows inside the model's captured input range (the domain or range gate's, else mean +- sqrt(3) std)."""
    from phasm.gate import ConformalGate, DomainGate, RangeGate, gate_from_json

    gate = gate_from_json(art.sections.get("gate"))
    domain = gate.domain if isinstance(gate, ConformalGate) else gate if isinstance(gate, (DomainGate, RangeGate)) else None
    if domain is not None:
        lo, hi = np.asarray(domain.low_, np.float64), np.asarray(domain.high_, np.float64)
    else:  # mean +- sqrt(3) std on the model's scale (through its transforms), constants as captured
        z = np.full((1, len(art.x_norm.mean)), np.sqrt(3), np.float32)
        lo, hi = (np.asarray(art.x_norm.inverse(sign * z), np.float64)[0] for sign in (-1, 1))
        lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
        for col, value in getattr(art.columns, "constant", {}).items():
            lo[col] = hi[col] = value
    X = np.random.default_rng(seed).uniform(lo, hi, (n, len(lo)))
    for col, twin in getattr(art.columns, "duplicate", {}).items():
        X[:, col] = X[:, twin]
    return X


def python_auto(art: Any, gate: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Python's ``auto``-mode answers and trusted mask for float32 rows ``X`` (as the surrogate computes them)."""
    from phasm.gate import FiniteGate, finite_rows

    if type(gate) is FiniteGate:
        Y, trusted = art.predict(X), np.ones(len(X), bool)
    elif hasattr(gate, "predict_accept"):
        Y, trusted = gate.predict_accept(X, art)
    else:
        Y = art.predict(X)
        trusted = gate.accept(X, Y, art)
    return np.asarray(Y), np.asarray(trusted, bool) & finite_rows(X) & finite_rows(Y)


def _rel(spec: Any, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Per row: the worst, over output variables, of ``||A - B|| / ||B||`` (0 where both are 0)."""
    worst = np.zeros(len(A))
    col = 0
    for v in spec.outputs:
        a, b = A[:, col : col + v.size].astype(np.float64), B[:, col : col + v.size].astype(np.float64)
        col += v.size
        num, den = np.linalg.norm(a - b, axis=1), np.linalg.norm(b, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(num == 0, 0.0, num / den)
        worst = np.maximum(worst, np.nan_to_num(r, nan=np.inf))
    return worst


def compare(art: Any, native: NativeModel, X: np.ndarray, gate: Any = None) -> CheckResult:
    """Compare the compiled model ``native`` with ``art`` (and its gate) on raw rows ``X``."""
    from phasm.gate import gate_from_json

    gate = gate if gate is not None else gate_from_json(art.sections.get("gate"))
    X32 = np.asarray(X, np.float32)
    n_out = art.spec.n_out_features
    Y_py = np.asarray(art.predict(X32), np.float64)
    Y_c, ok = native.model(X, n_out)
    rel = _rel(art.spec, Y_c, Y_py)
    scale = art.y_norm.scale.astype(np.float64)
    scaled = np.abs(Y_c - Y_py) / scale
    Ya_py, acc_py = python_auto(art, gate, X32)
    Ya_c, acc_c = native.predict(X, n_out)
    both = acc_py & acc_c
    gated = _rel(art.spec, Ya_c[both], np.asarray(Ya_py, np.float64)[both]) if both.any() else np.zeros(1)
    differ = np.flatnonzero(acc_py != acc_c)
    return CheckResult(
        rows=len(X), max_rel_error=float(rel.max(initial=0.0)), within_rel=float(np.mean(rel <= REL)),
        max_scaled_error=float(np.nanmax(scaled, initial=0.0)), decisions_equal=float(np.mean(acc_py == acc_c)),
        python_accepted=float(acc_py.mean()), c_accepted=float(acc_c.mean()),
        gated_max_rel_error=float(gated.max(initial=0.0)),
        disagreements=[explain(art, gate, X32[i : i + 1], bool(acc_py[i])) for i in differ[:20]],
    )


def explain(art: Any, gate: Any, x: np.ndarray, python_accepted: bool) -> str:
    """Why one row's decision may differ: its score and distance next to their thresholds."""
    from phasm.gate import ConformalGate, DomainGate

    side = "Python accepts, C rejects" if python_accepted else "C accepts, Python rejects"
    domain = gate.domain if isinstance(gate, ConformalGate) else gate if isinstance(gate, DomainGate) else None
    parts = [side]
    if domain is not None:
        ok, dist, _ = domain.check(x, np.zeros((1, art.spec.n_out_features), np.float32))
        d = float(domain.distance(x)[0])
        parts.append(f"distance {d:.9g} vs radius {domain.radius_:.9g} (relative gap {_gap(d, domain.radius_):.1e})")
    if isinstance(gate, ConformalGate):
        score = float(gate.predict_scores(x, art)[1][0])
        band = int(gate.region_of(x)[0])
        t = float(gate.thresholds_[band])
        parts.append(f"score {score:.9g} vs threshold {t:.9g} of region {band} (relative gap {_gap(score, t):.1e})")
    return "; ".join(parts)


def _gap(a: float, b: float) -> float:
    if not (np.isfinite(a) and np.isfinite(b)):
        return float("inf")
    return abs(a - b) / max(abs(b), 1e-300)
