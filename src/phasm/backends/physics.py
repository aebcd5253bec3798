"""Physics-informed training: what a backend needs to add a residual loss to the data loss.

A :class:`PhysicsProblem` is built by the train layer
(:func:`phasm.train.physics.fit_physics`, reached through
``fn.train(physics=...)``) from the user's residual function, the function's
spec and the input domain.  It holds plain numbers only, so this module does
not import torch; :mod:`phasm.backends.torch_physics` turns it into a loss.

The residual contract (see ``docs/physics-informed.md``)::

    def residual(model, inputs):       # inputs: {input name: tensor (n, *shape)} in user units, requires_grad
        out = model(inputs)            # {output name: tensor (n, *shape)} in user units, differentiable
        return ...                     # a tensor, a tuple/list or a dict of tensors that should be 0

Example
-------
>>> import numpy as np
>>> p = PhysicsProblem(lambda model, inputs: 0.0, weight=1.0, collocation=64,
...                    lower=np.zeros(1), upper=np.ones(1), inputs=(("x", ()),), outputs=(("u", ()),),
...                    x_mean=np.full(1, 0.5), x_scale=np.full(1, 0.29), y_mean=np.zeros(1), y_scale=np.ones(1))
>>> p.n_in, p.n_out
(1, 1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from phasm.errors import BackendError

Layout = tuple[tuple[str, tuple[int, ...]], ...]


def layout_size(layout: Layout) -> int:
    """Number of matrix columns a ``((name, shape), ...)`` layout takes."""
    return sum(math.prod(shape) for _, shape in layout)


@dataclass
class PhysicsProblem:
    """A residual loss to add to training, with everything needed to call it in user units.

    ``lower``/``upper``: the input domain per input feature (user units), where
    collocation points are drawn uniformly.  ``inputs``/``outputs``: the
    variables' names and shapes in the model's column order.  ``x_mean`` ...
    ``y_scale``: the standardisation the model is trained in, so the residual
    sees inputs and outputs in the user's units.  ``weight``: the factor of the
    mean squared residual in the loss; ``collocation``: points per step.
    """

    residual: Callable[..., Any]
    weight: float
    collocation: int
    lower: np.ndarray
    upper: np.ndarray
    inputs: Layout
    outputs: Layout
    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: np.ndarray
    y_scale: np.ndarray

    def __post_init__(self) -> None:
        if not callable(self.residual):
            raise BackendError(f"physics: residual must be callable as residual(model, inputs), got {type(self.residual).__name__}")
        if not (math.isfinite(float(self.weight)) and float(self.weight) >= 0):
            raise BackendError(f"physics: physics_weight must be a finite number >= 0, got {self.weight!r}")
        if int(self.collocation) < 1:
            raise BackendError(f"physics: collocation must be >= 1 points per step, got {self.collocation!r}")
        self.weight, self.collocation = float(self.weight), int(self.collocation)
        n_in, n_out = layout_size(self.inputs), layout_size(self.outputs)
        for what, arr, size in (("lower", self.lower, n_in), ("upper", self.upper, n_in), ("x_mean", self.x_mean, n_in),
                                ("x_scale", self.x_scale, n_in), ("y_mean", self.y_mean, n_out), ("y_scale", self.y_scale, n_out)):
            a = np.asarray(arr, np.float64)
            if a.shape != (size,) or not np.all(np.isfinite(a)):
                raise BackendError(f"physics: {what} must hold {size} finite values, got shape {a.shape}")
            setattr(self, what, a)
        if np.any(self.upper < self.lower):
            raise BackendError("physics: the domain's upper bounds must be >= its lower bounds")
        if np.any(self.x_scale <= 0) or np.any(self.y_scale <= 0):
            raise BackendError("physics: normalisation scales must be > 0")

    @property
    def n_in(self) -> int:
        return layout_size(self.inputs)

    @property
    def n_out(self) -> int:
        return layout_size(self.outputs)

    def varying_columns(self) -> np.ndarray:
        """Input columns whose domain is not a single value (the model must see them)."""
        return np.flatnonzero(self.upper > self.lower)

    def describe(self) -> dict[str, Any]:
        """JSON-able summary for the training record (the residual itself is code and is not saved)."""
        name = getattr(self.residual, "__qualname__", type(self.residual).__name__)
        domain, col = {}, 0
        for var, shape in self.inputs:
            k = math.prod(shape)
            domain[var] = [float(self.lower[col : col + k].min()), float(self.upper[col : col + k].max())] if k else []
            col += k
        return {"residual": f"{getattr(self.residual, '__module__', '?')}.{name}", "weight": self.weight,
                "collocation": self.collocation, "domain": domain}
