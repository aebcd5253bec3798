"""The replaceable expensive function: a 1-D heat-equation solve, wrapped by phasm.

``heat_midpoint(alpha, source, t_end)`` integrates u_t = alpha u_xx + source on
[0, 1] with u = 0 at both ends (explicit finite differences, 64 cells) and
returns the temperature at the midpoint. About a millisecond per call.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import phasm

WORK = Path(os.environ.get("PROFILE_DRIVER_WORK", Path(__file__).resolve().parent / "work"))


@phasm.surrogate(store=WORK / "heat.h5", backend="ridge")
def heat_midpoint(alpha: float, source: float, t_end: float) -> float:
    n = 64
    dx = 1.0 / n
    dt = 0.4 * dx * dx / alpha
    steps = int(np.ceil(t_end / dt))
    dt = t_end / steps
    u = np.zeros(n + 1)
    lam = alpha * dt / (dx * dx)
    for _ in range(steps):
        u[1:-1] += lam * (u[2:] - 2 * u[1:-1] + u[:-2]) + dt * source
    return float(u[n // 2])
