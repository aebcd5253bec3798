"""The model and its gate on captured rows: accuracy, the threshold curve, the replay of later captures.

Everything here is computed from a model artefact (anything with ``predict``), a gate (anything
with ``accept``; a :class:`~phasm.gate.ConformalGate` also gives its score) and rows of a store.

Example
-------
>>> import numpy as np
>>> c = threshold_curve(np.array([0.1, 0.2, 0.3, np.inf]), np.array([False, False, True, True]), 0.95, points=3)
>>> c.fallback_rate.round(2).tolist(), c.miss_rate.round(2).tolist()
([0.75, 0.5, 0.25], [0.0, 0.0, 0.33])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from phasm.bindings.spec import Spec, pack
from phasm.gate import ConformalGate, clopper_pearson_upper, finite_rows
from phasm.report.model import AccuracyData, DataColumn, GateCurve, OutputAccuracy, ReplayData
from phasm.report.sample import Rows, column
from phasm.train.metrics import per_call_relative_error

PREDICT_BATCH = 4096
PARITY_POINTS = 4000


def matrices(spec: Spec, rows: Rows) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs ``X (n, n_in)`` (float32) and captured outputs ``Y (n, n_out)`` (float64) of fixed-shape specs."""
    n = len(rows)
    return pack(spec.inputs, rows.inputs, n), pack(spec.outputs, rows.outputs, n, np.float64)


def predict(model: Any, X: np.ndarray) -> np.ndarray:
    """The model's answers in batches (float64)."""
    out = [np.asarray(model.predict(X[s : s + PREDICT_BATCH]), np.float64) for s in range(0, len(X), PREDICT_BATCH)]
    return np.concatenate(out) if out else np.empty((0, 0))


def output_blocks(spec: Spec) -> list[tuple[str, int, int]]:
    """``(name, first column, size)`` per output variable."""
    out, col = [], 0
    for v in spec.outputs:
        out.append((str(v.name), col, v.size))
        col += v.size
    return out


def rel_errors(spec: Spec, Y: np.ndarray, P: np.ndarray) -> dict[str, np.ndarray]:
    """Per output variable: the per-call relative L2 error."""
    return {name: per_call_relative_error(Y[:, c : c + k], P[:, c : c + k]) for name, c, k in output_blocks(spec)}


def accuracy(spec: Spec, rows: Rows, Y: np.ndarray, P: np.ndarray, after: np.ndarray, tolerance: Any,
             rows_label: str, seed: int = 0) -> AccuracyData:
    """Parity samples, per-call errors and per-row input values of the evaluated rows."""
    rng = np.random.default_rng(seed)
    outputs = []
    errors = rel_errors(spec, Y, P)
    for name, c, k in output_blocks(spec):
        true, pred = Y[:, c : c + k], P[:, c : c + k]
        cells = len(true) * k
        pick = rng.choice(cells, min(cells, PARITY_POINTS), replace=False) if cells else np.zeros(0, np.int64)
        r_lim, a_lim = tolerance.limits(name) if tolerance is not None else (None, None)
        outputs.append(OutputAccuracy(name=name, size=k, true=true.reshape(-1)[pick], pred=pred.reshape(-1)[pick],
                                      rel_error=errors[name], tolerance_rel=r_lim, tolerance_abs=a_lim))
    inputs: list[DataColumn] = []
    constant: list[str] = []
    for v in spec.inputs:
        col = column(v, "in", rows.inputs[str(v.name)], {})
        values = col.per_row
        if values is None or not np.isfinite(values).any() or np.nanmin(values) == np.nanmax(values):
            constant.append(str(v.name))
        else:
            inputs.append(col)
    return AccuracyData(rows_label=rows_label, n_rows=len(Y), after_training=after, outputs=outputs, inputs=inputs,
                        constant_inputs=constant)


def threshold_curve(score: np.ndarray, missed: np.ndarray, confidence: float, points: int = 100) -> GateCurve:
    """Fallback rate and miss rate among accepted rows when one threshold on ``score`` is swept.

    Thresholds: the score quantiles at ``1/points .. 1`` of the finite scores (``inf``: rejected by
    the domain check at any threshold).
    """
    finite = np.isfinite(score)
    s = np.sort(score[finite])
    n = len(score)
    if not len(s):
        empty = np.zeros(0)
        return GateCurve(empty, empty, empty, empty, empty.astype(np.int64))
    idx = np.unique(np.ceil(np.linspace(1, len(s), min(points, len(s)))).astype(np.int64) - 1)
    thresholds = np.unique(s[idx])  # tied scores: one threshold each
    fallback, miss, upper, accepted = [], [], [], []
    for t in thresholds:
        acc = finite & (score <= t)
        n_acc, k = int(acc.sum()), int(missed[acc].sum())
        accepted.append(n_acc)
        fallback.append(1.0 - n_acc / n)
        miss.append(k / n_acc if n_acc else np.nan)
        upper.append(clopper_pearson_upper(k, n_acc, confidence) if n_acc else np.nan)
    return GateCurve(thresholds, np.array(fallback), np.array(miss), np.array(upper), np.array(accepted))


def gate_scores(gate: Any, model: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(answers, score)`` of a score-based gate (a :class:`ConformalGate`), else ``None``."""
    if not isinstance(gate, ConformalGate):
        return None
    Y, score = gate.predict_scores(X, model)
    return np.asarray(Y, np.float64), np.asarray(score, np.float64)


def accepted_rows(gate: Any, model: Any, X: np.ndarray, P: np.ndarray) -> np.ndarray:
    """The rows the gate trusts, as ``auto`` mode decides (non-finite inputs and answers never)."""
    acc = np.asarray(gate.accept(X, P.astype(np.float32), model), bool).reshape(len(X))
    return acc & finite_rows(X) & finite_rows(P)


def operating_point(accepted: np.ndarray, missed: np.ndarray | None, confidence: float) -> dict[str, Any]:
    """Fallback rate and, with a tolerance, the miss rate among accepted rows and its upper bound."""
    n, n_acc = len(accepted), int(accepted.sum())
    point: dict[str, Any] = {"n_rows": n, "accepted": n_acc, "fallback_rate": 1.0 - n_acc / n if n else float("nan")}
    if missed is not None:
        k = int(missed[accepted].sum())
        point.update(misses=k, miss_rate=k / n_acc if n_acc else float("nan"),
                     miss_upper=clopper_pearson_upper(k, n_acc, confidence) if n_acc else float("nan"),
                     confidence=confidence)
    return point


def replay(spec: Spec, rows: Rows, Y: np.ndarray, P: np.ndarray, accepted: np.ndarray, missed: np.ndarray | None) -> ReplayData:
    """Later captures in row order: accepted now, missed, and the largest per-call relative error."""
    errors = rel_errors(spec, Y, P)
    worst = np.max(np.vstack(list(errors.values())), axis=0) if errors else np.zeros(len(Y))
    return ReplayData(rows=rows.rows, accepted=accepted, missed=missed, rel_error=worst)
