"""Steady-state heat equation ``-laplace(u) = f`` on the unit square, u = 0 on the boundary.

The solver is red-black Gauss-Seidel (SOR with ``OMEGA``; 1.0 is plain
Gauss-Seidel) on an ``N x N`` grid (boundary included), iterated until the
largest update is below ``TOL`` times the largest temperature.  It updates the
temperature array ``u`` in place (the value passed in is the initial guess),
like the original project's PDE example, and costs tens of milliseconds per
solve at the default size: the kind of function worth replacing.

:func:`solve_direct` solves the same discrete system with a sparse LU factorisation
(``scipy.sparse.linalg.splu``) computed once per grid size and reused by every call: the
fastest classical solver a user would reach for at this size, the honest baseline.

Two entry points, sharing one model (their specs are identical):

* :func:`heat` -- one solve, ``f`` and ``u`` of shape ``(N, N)``;
* :func:`heat_batch` -- many solves at once, ``(B, N, N)`` arrays (``batched=True``).

Environment: ``HEAT_N`` (grid size, default 32); ``HEAT_TOL`` / ``HEAT_MISS``: the error
tolerance (relative L2) and the allowed share of trusted calls beyond it; when set, training
holds out captures to calibrate the trust gate (see the trust-gate docs).

Example
-------
>>> import numpy as np, heat
>>> f = heat.random_sources(1, seed=0)[0]
>>> u = np.zeros_like(f)
>>> _ = heat.heat(f, u)          # u now holds the temperature field
"""

from __future__ import annotations

import functools
import os

import numpy as np

import phasm

N = int(os.environ.get("HEAT_N", "32"))
OMEGA = 1.5
TOL = 1e-6
MAX_ITER = 20_000
CHECK_EVERY = 10


def solve(f: np.ndarray, u: np.ndarray, *, omega: float = OMEGA, tol: float = TOL, max_iter: int = MAX_ITER) -> int:
    """Solve in place for ``u`` (``(..., n, n)``, boundary rows/columns kept at their values); returns iterations."""
    if f.shape != u.shape or f.ndim < 2 or f.shape[-1] != f.shape[-2]:
        raise ValueError(f"f and u must be (..., n, n) arrays of one shape; got f {f.shape}, u {u.shape}")
    n = f.shape[-1]
    h2 = (1.0 / (n - 1)) ** 2
    rhs = h2 * f
    # Interior points split by parity of i + j: "red" sub-lattices start at (1, 1) and (2, 2),
    # "black" ones at (1, 2) and (2, 1); each is a strided view, updated with numpy at once.
    lattices = ((1, 1), (2, 2)), ((1, 2), (2, 1))
    views = []
    for colour in lattices:
        for r0, c0 in colour:
            R, C = slice(r0, n - 1, 2), slice(c0, n - 1, 2)
            views.append((R, C, slice(r0 - 1, n - 2, 2), slice(r0 + 1, n, 2), slice(c0 - 1, n - 2, 2), slice(c0 + 1, n, 2)))
    scale = 1.0
    for it in range(1, max_iter + 1):
        check = it % CHECK_EVERY == 0
        if check:
            before = u[..., 1:-1, 1:-1].copy()
        for R, C, Rm, Rp, Cm, Cp in views:
            block = u[..., R, C]
            gs = 0.25 * (u[..., Rm, C] + u[..., Rp, C] + u[..., R, Cm] + u[..., R, Cp] + rhs[..., R, C])
            block += omega * (gs - block)
        if check:
            change = np.abs(u[..., 1:-1, 1:-1] - before).max()
            scale = max(float(np.abs(u).max()), 1e-30)
            if change <= tol * scale:
                return it
    return max_iter


@functools.lru_cache(maxsize=4)
def factorised(n: int):
    """Sparse LU factors of the five-point ``-laplace`` on the ``(n - 2)^2`` interior points (u = 0 outside)."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import splu

    m = n - 2
    d = sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1])
    A = (sp.kron(d, sp.identity(m)) + sp.kron(sp.identity(m), d)) * (n - 1) ** 2
    return splu(A.tocsc())


def solve_direct(f: np.ndarray, u: np.ndarray) -> None:
    """The same discrete solution as :func:`solve`, by the reused sparse LU; in place, ``(..., n, n)`` arrays."""
    if f.shape != u.shape or f.ndim < 2 or f.shape[-1] != f.shape[-2]:
        raise ValueError(f"f and u must be (..., n, n) arrays of one shape; got f {f.shape}, u {u.shape}")
    n = f.shape[-1]
    rhs = f[..., 1:-1, 1:-1].reshape(-1, (n - 2) ** 2).T   # one column per solve
    solved = factorised(n).solve(np.asfortranarray(rhs))  # SuperLU reads columns: Fortran order is much faster
    u[..., 1:-1, 1:-1] = solved.T.reshape(f.shape[:-2] + (n - 2, n - 2))
    u[..., 0, :] = u[..., -1, :] = u[..., :, 0] = u[..., :, -1] = 0.0


@phasm.surrogate(
    name="heat",
    inputs={"f": phasm.Array((N, N))},
    outputs={"u": phasm.Array((N, N), direction="inout")},
    store=os.environ.get("HEAT_STORE", "captures/heat.h5"),
    tolerance=(phasm.Tolerance(rel=float(os.environ["HEAT_TOL"]), max_miss_rate=float(os.environ.get("HEAT_MISS", "0.01")))
               if os.environ.get("HEAT_TOL") else None),
)
def heat(f: np.ndarray, u: np.ndarray) -> None:
    """One solve: ``u`` (initial guess in, temperature out) is updated in place."""
    solve(f, u)


@phasm.surrogate(
    name="heat_batch",
    inputs={"f": phasm.Array((N, N))},
    outputs={"u": phasm.Array((N, N), direction="inout")},
    batched=True,
)
def heat_batch(f: np.ndarray, u: np.ndarray) -> None:
    """Many solves at once: ``f`` and ``u`` are ``(B, N, N)``; ``u`` is updated in place."""
    solve(f, u)


def random_sources(count: int, n: int = N, *, seed: int = 0, blobs: int = 3) -> np.ndarray:
    """``count`` smooth random heat sources ``(count, n, n)``: sums of Gaussian blobs.

    Each blob has a random centre in the inner 70% of the square, a width of
    4-15% of the side and a strength in [10, 100].
    """
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, n)
    X, Y = np.meshgrid(x, x, indexing="ij")
    out = np.zeros((count, n, n))
    for _ in range(blobs):
        cx, cy = rng.uniform(0.15, 0.85, (2, count, 1, 1))
        w = rng.uniform(0.04, 0.15, (count, 1, 1))
        a = rng.uniform(10.0, 100.0, (count, 1, 1))
        out += a * np.exp(-((X - cx) ** 2 + (Y - cy) ** 2) / (2 * w**2))
    return out
