"""Charged-particle propagation through a magnetic field map: adaptive Runge-Kutta-Nystrom, plane to plane.

A track state on a plane ``z`` is the usual forward-tracking vector
``(x, y, tx, ty, q/p)``: position in metres, slopes ``tx = dx/dz`` and
``ty = dy/dz``, charge over momentum in 1/GeV.  Between planes the particle
obeys ``d2r/ds2 = kappa * (q/p) * (dr/ds x B(r))`` (``kappa = 0.299792458``
GeV / (T m), ``s`` the path length), integrated with the classical
fourth-order Runge-Kutta-Nystrom scheme used by detector propagators (three
field look-ups per step: start, middle, end).  Step sizes adapt per track:
the local error estimate ``h**2 * |k1 - k2 - k3 + k4|`` is kept under
``tolerance`` (metres), a step that exceeds it is retried shorter, and the
last step lands on the target plane to 0.1 um.  No material: no energy loss,
no multiple scattering.

Two implementations of one method:

* :func:`propagate_one` -- one track, plain floats, one field look-up per
  point (``field_one(x, y, z) -> (bx, by, bz)``): how a reconstruction steps a
  track;
* :func:`propagate` -- many tracks at once in numpy, each with its own step
  size (``field(points (n, 3)) -> (n, 3)``): the vectorised baseline a surrogate
  has to beat when calls come in batches.

Example
-------
>>> import numpy as np
>>> uniform = lambda p: np.tile([0.0, 0.0, 2.0], (len(p), 1))      # 2 T along z
>>> start = np.array([[0.0, 0.0, 0.1, 0.0, 1.0]])                  # 1 GeV, positive
>>> end = propagate(start, 0.0, [1.0], uniform)[0, 0]
>>> bool(abs(np.hypot(end[2], end[3]) - 0.1) < 1e-6)              # |slope| is conserved in a uniform Bz
True
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

KAPPA = 0.299792458  # GeV / (T m) per unit charge
PLANE_EPS = 1e-5  # metres: within this distance of its plane a track goes the rest on a straight line
MAX_STEP = 0.5  # metres
MIN_STEP = 1e-4
SAFETY = 0.9  # a step sized to exactly the tolerance would be rejected as often as taken


def _direction(tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
    n = np.sqrt(1.0 + tx * tx + ty * ty)
    return np.stack([tx / n, ty / n, 1.0 / n], -1)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1],
                     a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                     a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]], 1)


def _to_plane(d: np.ndarray, uz: np.ndarray, kz: np.ndarray) -> np.ndarray:
    """Path length to the plane ``d`` ahead along z: the root of ``uz*s + kz*s**2/2 = d`` (straight line if none)."""
    disc = uz * uz + 2.0 * kz * d
    with np.errstate(invalid="ignore"):
        return np.where(disc > 0, 2.0 * d / (uz + np.sqrt(np.maximum(disc, 0.0))), d / uz)


def propagate(states: np.ndarray, z0: float, planes: Sequence[float], field: Callable[[np.ndarray], np.ndarray],
              tolerance: float = 1e-6, max_steps: int = 10_000) -> np.ndarray:
    """Propagate ``states (n, 5)`` = ``(x, y, tx, ty, q/p)`` on plane ``z0`` through the planes in order.

    Returns ``(n, len(planes), 4)``: ``(x, y, tx, ty)`` on each plane (``q/p``
    does not change without material).  Planes must lie downstream of ``z0``,
    in increasing ``z``; tracks must move forward (``dz/ds > 0`` all the way).
    """
    states = np.asarray(states, np.float64)
    if states.ndim != 2 or states.shape[1] != 5:
        raise ValueError(f"propagate: states must be (n, 5) = (x, y, tx, ty, q/p), got {states.shape}")
    planes = [float(p) for p in planes]
    if not planes or any(b <= a for a, b in zip([z0, *planes], planes)):
        raise ValueError(f"propagate: planes must be increasing and downstream of z0={z0}, got {planes}")
    n = len(states)
    pos = np.column_stack([states[:, 0], states[:, 1], np.full(n, float(z0))])
    dirn = _direction(states[:, 2], states[:, 3])
    lam = KAPPA * states[:, 4]
    h = np.full(n, 0.05)
    out = np.empty((n, len(planes), 4))
    for k, zt in enumerate(planes):
        active = np.arange(n)
        for _ in range(max_steps):
            if not len(active):
                break
            r, t, lm = pos[active], dirn[active], lam[active, None]
            b1 = field(r)
            k1 = lm * _cross(t, b1)
            hs = np.minimum(h[active], _to_plane(zt - r[:, 2], t[:, 2], k1[:, 2]))
            hc = hs[:, None]
            b2 = field(r + 0.5 * hc * t + 0.125 * hc * hc * k1)
            k2 = lm * _cross(t + 0.5 * hc * k1, b2)
            k3 = lm * _cross(t + 0.5 * hc * k2, b2)
            b3 = field(r + hc * t + 0.5 * hc * hc * k3)
            k4 = lm * _cross(t + hc * k3, b3)
            err = hs * hs * np.abs(k1 - k2 - k3 + k4).sum(1)
            ok = err <= tolerance
            # next step: grow/shrink by SAFETY * (tol/err)^(1/4), within [0.25, 4]
            scale = np.clip(SAFETY * (tolerance / np.maximum(err, 1e-300)) ** 0.25, 0.25, 4.0)
            h[active] = np.clip(hs * scale, MIN_STEP, MAX_STEP)
            forced = hs <= MIN_STEP  # never stall: the smallest step is always taken
            ok |= forced
            if ok.any():
                a = active[ok]
                hk = hc[ok]
                pos[a] = r[ok] + hk * t[ok] + hk * hk / 6.0 * (k1[ok] + k2[ok] + k3[ok])
                nt = t[ok] + hk / 6.0 * (k1[ok] + 2.0 * k2[ok] + 2.0 * k3[ok] + k4[ok])
                dirn[a] = nt / np.linalg.norm(nt, axis=1, keepdims=True)
            done = np.abs(zt - pos[active, 2]) < PLANE_EPS
            if done.any():  # the last few um to the plane on a straight line (error ~ curvature * um**2)
                a = active[done]
                dz = zt - pos[a, 2]
                pos[a, 0:2] += dirn[a, 0:2] / dirn[a, 2:3] * dz[:, None]
                pos[a, 2] = zt
            if (dirn[active, 2] <= 0).any():
                raise ValueError("propagate: a track turned back (dz/ds <= 0) before reaching its plane")
            active = active[~done]
        else:
            raise RuntimeError(f"propagate: {len(active)} tracks did not reach z={zt} in {max_steps} steps")
        out[:, k, 0:2] = pos[:, 0:2]
        out[:, k, 2] = dirn[:, 0] / dirn[:, 2]
        out[:, k, 3] = dirn[:, 1] / dirn[:, 2]
    return out


def propagate_one(x: float, y: float, tx: float, ty: float, qop: float, z0: float, planes: Sequence[float],
                  field_one: Callable[[float, float, float], tuple[float, float, float]],
                  tolerance: float = 1e-6, max_steps: int = 10_000) -> list[tuple[float, float, float, float]]:
    """One track from plane ``z0`` through ``planes``, in plain floats: ``(x, y, tx, ty)`` on each plane.

    The same scheme and step control as :func:`propagate` (the two agree to
    rounding), written the way a per-track propagator is: no arrays.
    """
    nrm = math.sqrt(1.0 + tx * tx + ty * ty)
    px, py, pz = x, y, z0
    ux, uy, uz = tx / nrm, ty / nrm, 1.0 / nrm
    lm = KAPPA * qop
    h = 0.05
    out = []
    steps = 0
    for zt in planes:
        if not zt > pz - PLANE_EPS:
            raise ValueError(f"propagate_one: planes must be increasing and downstream of z0={z0}, got {list(planes)}")
        while abs(zt - pz) >= PLANE_EPS:
            steps += 1
            if steps > max_steps:
                raise RuntimeError(f"propagate_one: the track did not reach z={zt} in {max_steps} steps")
            bx, by, bz = field_one(px, py, pz)
            k1x, k1y, k1z = lm * (uy * bz - uz * by), lm * (uz * bx - ux * bz), lm * (ux * by - uy * bx)
            d = zt - pz
            disc = uz * uz + 2.0 * k1z * d
            hs = min(h, 2.0 * d / (uz + math.sqrt(disc)) if disc > 0 else d / uz)
            c = 0.125 * hs * hs
            bx, by, bz = field_one(px + 0.5 * hs * ux + c * k1x, py + 0.5 * hs * uy + c * k1y, pz + 0.5 * hs * uz + c * k1z)
            ax, ay, az = ux + 0.5 * hs * k1x, uy + 0.5 * hs * k1y, uz + 0.5 * hs * k1z
            k2x, k2y, k2z = lm * (ay * bz - az * by), lm * (az * bx - ax * bz), lm * (ax * by - ay * bx)
            ax, ay, az = ux + 0.5 * hs * k2x, uy + 0.5 * hs * k2y, uz + 0.5 * hs * k2z
            k3x, k3y, k3z = lm * (ay * bz - az * by), lm * (az * bx - ax * bz), lm * (ax * by - ay * bx)
            c = 0.5 * hs * hs
            bx, by, bz = field_one(px + hs * ux + c * k3x, py + hs * uy + c * k3y, pz + hs * uz + c * k3z)
            ax, ay, az = ux + hs * k3x, uy + hs * k3y, uz + hs * k3z
            k4x, k4y, k4z = lm * (ay * bz - az * by), lm * (az * bx - ax * bz), lm * (ax * by - ay * bx)
            err = hs * hs * (abs(k1x - k2x - k3x + k4x) + abs(k1y - k2y - k3y + k4y) + abs(k1z - k2z - k3z + k4z))
            scale = 4.0 if err <= 0 else min(max(SAFETY * (tolerance / err) ** 0.25, 0.25), 4.0)
            h = min(max(hs * scale, MIN_STEP), MAX_STEP)
            if err <= tolerance or hs <= MIN_STEP:
                c = hs * hs / 6.0
                px += hs * ux + c * (k1x + k2x + k3x)
                py += hs * uy + c * (k1y + k2y + k3y)
                pz += hs * uz + c * (k1z + k2z + k3z)
                d = hs / 6.0
                ux += d * (k1x + 2.0 * k2x + 2.0 * k3x + k4x)
                uy += d * (k1y + 2.0 * k2y + 2.0 * k3y + k4y)
                uz += d * (k1z + 2.0 * k2z + 2.0 * k3z + k4z)
                nrm = math.sqrt(ux * ux + uy * uy + uz * uz)
                ux, uy, uz = ux / nrm, uy / nrm, uz / nrm
                if uz <= 0:
                    raise ValueError("propagate_one: the track turned back (dz/ds <= 0) before reaching its plane")
        dz = zt - pz  # the last few um to the plane on a straight line
        px, py, pz = px + ux / uz * dz, py + uy / uz * dz, zt
        out.append((px, py, ux / uz, uy / uz))
    return out


def helix_uniform(states: np.ndarray, z0: float, zt: float, bz: float) -> np.ndarray:
    """Exact ``(x, y, tx, ty)`` on plane ``zt`` in a uniform field ``(0, 0, bz)`` (a check for the integrator)."""
    s = np.asarray(states, np.float64)
    x, y, tx, ty, qop = s.T
    # |(tx, ty)| is conserved and the slope vector turns at the constant rate w per unit z.
    norm = np.sqrt(1.0 + tx * tx + ty * ty)
    w = KAPPA * qop * bz * norm
    dz = zt - z0
    phi = w * dz
    c, sn = np.cos(phi), np.sin(phi)
    tx1 = tx * c + ty * sn
    ty1 = -tx * sn + ty * c
    with np.errstate(divide="ignore", invalid="ignore"):
        small = np.abs(w) < 1e-12
        wi = np.where(small, 1.0, w)
        x1 = np.where(small, x + tx * dz, x + (tx * sn - ty * (c - 1.0)) / wi)
        y1 = np.where(small, y + ty * dz, y + (ty * sn + tx * (c - 1.0)) / wi)
    return np.stack([x1, y1, tx1, ty1], 1)
