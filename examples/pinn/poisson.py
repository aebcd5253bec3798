"""Steady heat conduction in a plate with a heat source: the problem, its finite-difference solver, its physics.

On the unit square, temperature ``T(x, y)`` solves ::

    -laplace(T) = q * exp(-((x - sx)^2 + (y - sy)^2) / (2 * SIGMA^2))     (a Gaussian heat source)
    T(0, y) = t_left,  T(1, y) = t_right                                   (held edges)
    dT/dy (x, 0) = dT/dy (x, 1) = 0                                        (insulated edges)

Five parameters: the source's position ``(sx, sy)`` and strength ``q``, and the two edge
temperatures.  The original function, :func:`temperature`, answers ``T`` at points
``(x, y)`` for given parameters by a second-order finite-difference solve on a ``GRID x GRID``
mesh (a sparse LU factorisation reused across solves, since only the right-hand side
changes) and bilinear interpolation.  It is ``batched``: every argument is an array of
one length, and each distinct parameter set costs one solve.

:func:`heat_residual` is the same physics written for phasm's physics-informed training.

Example
-------
>>> import numpy as np, poisson
>>> field = poisson.solve_field(0.5, 0.5, 10.0, 1.0, 0.0)    # (GRID, GRID), indexed [x, y]
>>> float(field[0, 0]), float(field[-1, 0])
(1.0, 0.0)
"""

from __future__ import annotations

import functools
import os

import numpy as np

import phasm

GRID = int(os.environ.get("PINN_GRID", "41"))   # mesh nodes per side, edges included
SIGMA = 0.1                                     # width of the heat source
INPUTS = ("x", "y", "sx", "sy", "q", "t_left", "t_right")
# Parameter ranges of the study (and the physics domain); x and y span the plate.
DOMAIN = {"x": (0.0, 1.0), "y": (0.0, 1.0), "sx": (0.3, 0.7), "sy": (0.3, 0.7), "q": (0.0, 40.0),
          "t_left": (0.0, 1.0), "t_right": (0.0, 1.0)}
Q_MAX = DOMAIN["q"][1]


@functools.lru_cache(maxsize=4)
def _factorised(n: int):
    """LU factors of the n x n five-point operator (Dirichlet in x, Neumann in y by mirror nodes)."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import splu

    h2 = (1.0 / (n - 1)) ** 2
    m = n - 2                                              # unknown columns x_1 .. x_{n-2}
    dx = sp.diags([np.ones(m - 1), -2 * np.ones(m), np.ones(m - 1)], [-1, 0, 1])
    dy = sp.diags([np.ones(n - 1), -2 * np.ones(n), np.ones(n - 1)], [-1, 0, 1]).tolil()
    dy[0, 1] = 2.0                                         # mirror node T[-1] = T[1]: dT/dy = 0
    dy[n - 1, n - 2] = 2.0
    lap = (sp.kron(dx, sp.identity(n)) + sp.kron(sp.identity(m), dy.tocsr())) / h2
    return splu((-lap).tocsc())


def source(x, y, sx, sy, q):
    """The heat source density at ``(x, y)`` (numpy or torch arrays)."""
    lib = np if isinstance(x, np.ndarray) or np.isscalar(x) else __import__("torch")
    return q * lib.exp(-((x - sx) ** 2 + (y - sy) ** 2) / (2 * SIGMA**2))


def solve_field(sx: float, sy: float, q: float, t_left: float, t_right: float, n: int = GRID) -> np.ndarray:
    """The finite-difference temperature on the ``n x n`` mesh, ``field[i, j] = T(x_i, y_j)``."""
    grid = np.linspace(0.0, 1.0, n)
    X, Y = np.meshgrid(grid[1:-1], grid, indexing="ij")
    rhs = source(X, Y, sx, sy, q)
    h2 = (1.0 / (n - 1)) ** 2
    rhs[0, :] += t_left / h2                               # held edges enter the first and last columns
    rhs[-1, :] += t_right / h2
    inner = _factorised(n).solve(rhs.ravel()).reshape(n - 2, n)
    return np.vstack([np.full((1, n), t_left), inner, np.full((1, n), t_right)])


def interpolate(field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a mesh field at points in the unit square."""
    n = field.shape[0]
    fx, fy = np.clip(x, 0, 1) * (n - 1), np.clip(y, 0, 1) * (n - 1)
    i, j = np.minimum(fx.astype(int), n - 2), np.minimum(fy.astype(int), n - 2)
    a, b = fx - i, fy - j
    return ((1 - a) * (1 - b) * field[i, j] + a * (1 - b) * field[i + 1, j]
            + (1 - a) * b * field[i, j + 1] + a * b * field[i + 1, j + 1])


@phasm.surrogate(
    name="temperature",
    inputs={k: phasm.Scalar() for k in INPUTS},
    outputs={"T": phasm.Scalar()},
    batched=True,
    store=os.environ.get("PINN_STORE", "captures/temperature.h5"),
)
def temperature(x, y, sx, sy, q, t_left, t_right):
    """``T`` at points ``(x, y)``; all arguments are arrays of one length (one solve per distinct parameter set)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    params = np.stack([np.asarray(a, np.float64) for a in (sx, sy, q, t_left, t_right)], axis=1)
    out = np.empty(len(x))
    unique, which = np.unique(params, axis=0, return_inverse=True)
    for k, p in enumerate(unique):
        rows = np.flatnonzero(which.ravel() == k)
        out[rows] = interpolate(solve_field(*p), x[rows], y[rows])
    return out


def heat_residual(model, inputs):
    """The physics for ``fn.train(physics=heat_residual)``: PDE inside, boundary conditions on the edges.

    ``inputs`` are collocation points drawn over the whole domain (torch tensors in the
    function's units, requiring grad); ``model`` maps such a dict to ``{"T": tensor}``.
    Each term is scaled to order 1 (the PDE by the largest source strength).
    """
    import torch

    def grad(out, wrt):
        return torch.autograd.grad(out.sum(), wrt, create_graph=True)[0]

    x, y = inputs["x"], inputs["y"]
    T = model(inputs)["T"]
    T_x, T_y = grad(T, x), grad(T, y)
    laplacian = grad(T_x, x) + grad(T_y, y)
    pde = (laplacian + source(x, y, inputs["sx"], inputs["sy"], inputs["q"])) / Q_MAX
    # Boundary points: a quarter of the points (they are random), moved onto an edge.
    edge = {k: v[: max(1, len(x) // 4)].detach() for k, v in inputs.items()}
    left = model({**edge, "x": torch.zeros_like(edge["x"])})["T"] - edge["t_left"]
    right = model({**edge, "x": torch.ones_like(edge["x"])})["T"] - edge["t_right"]
    edge_y = torch.where(edge["y"] < 0.5, 0.0, 1.0).requires_grad_(True)
    insulated = grad(model({**edge, "y": edge_y})["T"], edge_y)
    return {"pde": pde, "left": left, "right": right, "insulated": insulated}


def random_parameters(count: int, seed: int) -> np.ndarray:
    """``count`` parameter sets ``(sx, sy, q, t_left, t_right)`` drawn uniformly in their ranges."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(*DOMAIN[k], count) for k in INPUTS[2:]], axis=1)
