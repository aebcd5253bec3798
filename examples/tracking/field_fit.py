"""Track fit in the magnetic field: the start state that best explains a variable-length list of hits.

``fit_hits`` is a least-squares fit of ``(x0, y0, tx, ty, q/p)`` on the
target plane to the hits' ``(x, y)``, the model being the Runge-Kutta-Nystrom
propagation through the field map (:func:`propagate.propagate_one`, one
track, one field look-up per point).  It starts from a helix seed (a circle
through the hits' transverse projection, its phase advance along ``z`` giving
``q/p``) and iterates Gauss-Newton steps whose residuals come from the real
propagation and whose Jacobian from the uniform-field helix (cheap, and close
enough that the iteration converges in a few steps to the same minimum).
Several milliseconds per event: the kind of function a sequence model can
stand in for.

Example
-------
>>> import numpy as np
>>> from propagate import propagate
>>> uniform = lambda p: np.tile([0.0, 0.0, 1.8], (len(p), 1))
>>> truth = np.array([0.01, -0.005, 0.1, -0.2, 0.5])
>>> planes = np.array([0.4, 0.7, 1.0, 1.3, 1.6])
>>> xy = propagate(truth[None], 0.0, planes, uniform)[0, :, :2]
>>> hits = np.column_stack([xy, planes])
>>> fit, _ = fit_hits(hits, lambda x, y, z: (0.0, 0.0, 1.8))
>>> bool(np.allclose(fit, truth, atol=1e-6))
True
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

import phasm
from detector import Z0, Event, Track
from propagate import KAPPA, propagate_one

B_SEED = 1.82  # tesla: about the mean field along a track; the seed and the Jacobian assume it
FIT_TOLERANCE = 1e-4  # RKN step tolerance inside the fit (metres)
MAX_ITERATIONS = 10
STATE = ("x0", "y0", "tx", "ty", "qop")


def helix_xy(states: np.ndarray, zs: np.ndarray, bz: float) -> np.ndarray:
    """``(k, m, 2)`` positions on planes ``zs`` of ``k`` start states in a uniform field ``bz`` (from ``Z0``)."""
    x, y, tx, ty, qop = (states[:, i : i + 1] for i in range(5))
    w = KAPPA * qop * bz * np.sqrt(1.0 + tx * tx + ty * ty)
    phi = w * (zs[None, :] - Z0)
    s = np.sinc(phi / np.pi) * (zs - Z0)                  # sin(phi) / w, finite as w -> 0
    c = -np.sin(0.5 * phi) * np.sinc(phi / (2 * np.pi)) * (zs - Z0)  # (cos(phi) - 1) / w
    return np.stack([x + tx * s - ty * c, y + ty * s + tx * c], -1)


def helix_seed(hits: np.ndarray, bz: float = B_SEED) -> np.ndarray:
    """Start state from the hits: circle fit in (x, y), phase advance along z, extrapolated to ``Z0``."""
    x, y, z = hits[:, 0], hits[:, 1], hits[:, 2]
    A = np.column_stack([x, y, np.ones_like(x)])
    (D, E, F), *_ = np.linalg.lstsq(A, -(x * x + y * y), rcond=None)
    xc, yc = -0.5 * D, -0.5 * E
    R = math.sqrt(max(xc * xc + yc * yc - F, 1e-12))
    theta = np.unwrap(np.arctan2(y - yc, x - xc))
    slope, theta0 = np.polyfit(z - Z0, theta, 1)
    w = -slope  # the position angle turns at -w per unit z
    t_T = R * abs(w)
    qop = w / (KAPPA * bz * math.sqrt(1.0 + t_T * t_T))
    x0, y0 = xc + R * math.cos(theta0), yc + R * math.sin(theta0)
    return np.array([x0, y0, R * w * math.sin(theta0), -R * w * math.cos(theta0), qop])


def fit_hits(hits: np.ndarray, field_one: Callable[[float, float, float], tuple[float, float, float]],
             bz: float = B_SEED, tolerance: float = FIT_TOLERANCE) -> tuple[np.ndarray, int]:
    """The least-squares start state ``(x0, y0, tx, ty, q/p)`` for ``hits (m, 3)``; also the iterations used."""
    hits = np.asarray(hits, np.float64)
    if hits.ndim != 2 or hits.shape[1] != 3 or len(hits) < 3:
        raise ValueError(f"fit_hits: hits must be (m >= 3, 3) = (x, y, z), got {hits.shape}")
    hits = hits[np.argsort(hits[:, 2], kind="stable")]
    zs, meas = hits[:, 2], hits[:, :2].reshape(-1)
    p = helix_seed(hits, bz)
    eps = np.array([1e-5, 1e-5, 1e-6, 1e-6, 1e-6])
    for it in range(1, MAX_ITERATIONS + 1):
        pred = np.asarray(propagate_one(*p, Z0, zs, field_one, tolerance=tolerance))[:, :2].reshape(-1)
        varied = p[None, :] + np.diag(eps)
        J = ((helix_xy(varied, zs, bz) - helix_xy(p[None], zs, bz)).reshape(5, -1) / eps[:, None]).T
        dp, *_ = np.linalg.lstsq(J, meas - pred, rcond=None)
        p = p + dp
        if np.all(np.abs(dp[:4]) < 1e-6) and abs(dp[4]) < 1e-5 * abs(p[4]):  # far below the hit resolution
            break
    return p, it


def make_fit_track(field_one: Callable[[float, float, float], tuple[float, float, float]], store: Path | None = None,
                   tolerance: phasm.Tolerance | None = None) -> Any:
    """``fit_track(event, track)``: fits ``event.hits`` and writes the start state into ``track``, wrapped by phasm."""

    @phasm.surrogate(
        inputs={"hits": phasm.each("event.hits", fields=["x", "y", "z"], max_len=10)},
        outputs={name: phasm.attr(f"track.{name}") for name in STATE},
        store=store, tolerance=tolerance, name="tracking.fit_track_in_field",
    )
    def fit_track(event: Event, track: Track) -> None:
        hits = np.array([(h.x, h.y, h.z) for h in event.hits])
        state, _ = fit_hits(hits, field_one)
        track.x0, track.y0, track.tx, track.ty, track.qop = map(float, state)

    return fit_track
