"""Functions the sampling tests run on Dask workers: importable by the spawned worker processes."""

from __future__ import annotations

import math
import os
import time

import numpy as np

import phasm


def slow_product(x: float, y: float, scale: float = 1.0) -> float:
    """50 ms of sleep, then a known answer: the shape of a simulation waiting on I/O or a solver."""
    time.sleep(0.05)
    return scale * x * math.log(y)


def quick(x: float, y: float) -> float:
    return x * x + y


def sleepy(x: float, y: float) -> float:
    time.sleep(0.02)
    return x * x + y


def flaky(x: float, y: float) -> tuple[float, float]:
    """Raises for x > 0.8, returns NaN for y < 0.2: failures the run must record, not lose."""
    if x > 0.8:
        raise ValueError(f"no convergence at x={x:.3f}")
    return (x + y, math.nan if y < 0.2 else x * y)


def crash_above(x: float, y: float) -> float:
    """Kills its own process for x > 0.8 (a segfault in a solver, say)."""
    if x > 0.8:
        os._exit(9)
    return x - y


def field(a: float, n: int = 4) -> np.ndarray:
    """An array output: a row of a field."""
    return a * np.arange(n, dtype=np.float64)


@phasm.surrogate(store="captures/wrapped.h5")
def wrapped(T: float, P: float, phi: float) -> float:
    return T * 1e-3 + math.log(P) * phi


@phasm.surrogate(store="captures/vec.h5", batched=True)
def vectorised(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.sin(x) * y


def bump(x: float, y: float) -> float:
    """Smooth background with a narrow bump at (0.7, 0.3): a localised feature."""
    return x + 0.5 * y + 2.0 * math.exp(-((x - 0.7) ** 2 + (y - 0.3) ** 2) / (2 * 0.05**2))


def positional_only(y: float, x: float, /) -> float:
    return math.atan2(y, x)


def always_fails(x: float) -> float:
    raise RuntimeError("license server unreachable")


def with_kwargs(x: float, *args: float, **kwargs: float) -> float:
    return x + sum(args) + sum(kwargs.values())
