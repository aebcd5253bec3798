"""Error metrics per output variable, in the user's units.

Relative error of one call is ``||pred - true||_2 / ||true||_2`` over the
variable's elements (for a scalar: ``|pred - true| / |true|``), with the
denominator floored at a tiny fraction of the variable's typical magnitude
so exact zeros do not explode it.

Example
-------
>>> import numpy as np
>>> from phasm.bindings.spec import Scalar, Spec
>>> spec = Spec.from_declarations("m.f", {"x": Scalar()}, {"y": Scalar()})
>>> m = output_metrics(spec, np.array([[1.0], [2.0]]), np.array([[1.1], [2.0]]))
>>> round(m["y"]["max_abs"], 3)
0.1
"""

from __future__ import annotations

from typing import Any

import numpy as np

from phasm.bindings.spec import Spec


def per_call_relative_error(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Relative L2 error per row of ``(n, k)`` blocks.

    A row whose truth is NaN or infinite gets NaN; the floor comes from the finite rows only, so such a
    row never changes the others' errors.

    >>> per_call_relative_error(np.array([[1.0], [np.nan], [0.0]]), np.array([[1.1], [1.0], [0.0]])).round(3)
    array([0.1, nan, 0. ])
    """
    true = np.asarray(true, np.float64).reshape(len(true), -1)
    pred = np.asarray(pred, np.float64).reshape(len(pred), -1)
    num = np.linalg.norm(pred - true, axis=1)
    den = np.linalg.norm(true, axis=1)
    finite = np.isfinite(den)
    floor = 1e-9 * max(float(np.median(den[finite])) if finite.any() else 0.0, 1e-30)
    with np.errstate(invalid="ignore"):
        return np.where(finite, num / np.maximum(den, floor), np.nan)


def output_metrics(spec: Spec, Y_true: np.ndarray, Y_pred: np.ndarray) -> dict[str, dict[str, Any]]:
    """RMSE, max abs error and relative-error quantiles (50/90/99%) per output variable."""
    out: dict[str, dict[str, Any]] = {}
    col = 0
    for v in spec.outputs:
        t = Y_true[:, col : col + v.size]
        p = Y_pred[:, col : col + v.size]
        col += v.size
        if len(t) == 0:
            continue
        err = np.asarray(p, np.float64) - np.asarray(t, np.float64)
        rel = per_call_relative_error(t, p)
        out[v.name] = {  # type: ignore[index]
            "rmse": float(np.sqrt(np.mean(err**2))),
            "max_abs": float(np.max(np.abs(err))),
            "rel_p50": float(np.quantile(rel, 0.5)),
            "rel_p90": float(np.quantile(rel, 0.9)),
            "rel_p99": float(np.quantile(rel, 0.99)),
            "n": int(len(t)),
        }
    return out
