"""Designs of experiments in the unit cube: Sobol, Latin hypercube, full grid, uniform random.

Sobol and Latin-hypercube points come from :mod:`scipy.stats.qmc` (scrambled,
seeded).  ``sobol`` and ``random`` are *sequences*: the first ``m`` points of a
design of ``n > m`` are the design of ``m``, so a finished run can be extended
with more points of the same design; ``lhs`` and ``grid`` cannot.

Example
-------
>>> U = unit_design(2, 8, "sobol", seed=0)
>>> U.shape, bool(((U >= 0) & (U <= 1)).all())
((8, 2), True)
>>> unit_design(2, 9, "grid").tolist()[:3]
[[0.0, 0.0], [0.0, 0.5], [0.0, 1.0]]
>>> bool((unit_design(3, 4, "sobol") == unit_design(3, 16, "sobol")[:4]).all())
True
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from phasm.errors import SampleError

METHODS = ("sobol", "lhs", "grid", "random")
EXTENSIBLE = ("sobol", "random")


def grid_side(dim: int, n: int) -> int:
    """Points per axis of the largest full grid of at most ``n`` points in ``dim`` dimensions (>= 2)."""
    k = max(2, int(math.floor(n ** (1.0 / dim) + 1e-9)))
    while (k + 1) ** dim <= n:
        k += 1
    return k


def unit_design(dim: int, n: int, method: str = "sobol", seed: int = 0) -> np.ndarray:
    """``n`` points ``(n, dim)`` in ``[0, 1]^dim`` (a grid has ``grid_side(dim, n) ** dim`` points)."""
    if method not in METHODS:
        raise SampleError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise SampleError(f"n must be a positive number of calls, got {n!r}")
    if dim < 1:
        raise SampleError(f"a design needs at least one range, got dim={dim}")
    n = int(n)
    if method == "random":
        return np.random.default_rng(seed).random((n, dim))
    if method == "grid":
        k = grid_side(dim, n)
        axes = np.meshgrid(*([np.linspace(0.0, 1.0, k)] * dim), indexing="ij")
        return np.stack([a.reshape(-1) for a in axes], axis=1)
    from scipy.stats import qmc

    engine = qmc.Sobol(dim, scramble=True, rng=seed) if method == "sobol" else qmc.LatinHypercube(dim, rng=seed)
    with warnings.catch_warnings():
        # Sobol's balance is best at powers of two; any prefix is still a low-discrepancy sequence.
        warnings.simplefilter("ignore", UserWarning)
        return engine.random(n)
