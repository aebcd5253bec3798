"""The physics loss for torch backends: collocation points, a model in user units, the residual.

:class:`PhysicsLoss` turns a :class:`~phasm.backends.physics.PhysicsProblem`
into ``loss(module) -> (weighted mean squared residual, per-term values)``.
Each call draws ``collocation`` points uniformly in the input domain (a
seeded generator), hands the user's residual a dict of input tensors in user
units that require grad, and a ``model`` that maps such a dict to a dict of
output tensors in user units, the standardisation applied inside and
differentiable, so derivatives (``torch.autograd.grad``) come out in physical
units.

Example
-------
>>> import numpy as np, torch
>>> from phasm.backends.physics import PhysicsProblem
>>> def ode(model, inputs):                      # u' = u on [0, 1]
...     t = inputs["t"]; u = model(inputs)["u"]
...     du, = torch.autograd.grad(u.sum(), t, create_graph=True)
...     return du - u
>>> p = PhysicsProblem(ode, weight=1.0, collocation=32, lower=np.zeros(1), upper=np.ones(1),
...                    inputs=(("t", ()),), outputs=(("u", ()),), x_mean=np.full(1, 0.5),
...                    x_scale=np.full(1, 0.29), y_mean=np.zeros(1), y_scale=np.ones(1))
>>> loss = PhysicsLoss(p, torch.device("cpu"), seed=0)
>>> value, terms = loss(torch.nn.Linear(1, 1))
>>> value.ndim, sorted(terms)
(0, ['residual'])
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import numpy as np
import torch

from phasm.backends.physics import Layout, PhysicsProblem
from phasm.errors import BackendError


def _tensor(a: np.ndarray, dev: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, np.float32), device=dev)


class PhysicsLoss:
    """``loss(module)``: the weighted mean squared residual of ``module`` on fresh collocation points."""

    def __init__(self, problem: PhysicsProblem, device: torch.device, *, seed: int = 0) -> None:
        self.problem = problem
        self.device = device
        self.lower = _tensor(problem.lower, device)
        self.width = _tensor(problem.upper - problem.lower, device)
        self.x_mean, self.x_scale = _tensor(problem.x_mean, device), _tensor(problem.x_scale, device)
        self.y_mean, self.y_scale = _tensor(problem.y_mean, device), _tensor(problem.y_scale, device)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(int(seed))

    def model_fn(self, module: torch.nn.Module) -> Callable[[Mapping[str, Any]], dict[str, torch.Tensor]]:
        """``module`` as a function of named inputs in user units returning named outputs in user units."""
        inputs, outputs = self.problem.inputs, self.problem.outputs
        x_mean, x_scale, y_mean, y_scale = self.x_mean, self.x_scale, self.y_mean, self.y_scale
        dev = self.device

        def model(values: Mapping[str, Any]) -> dict[str, torch.Tensor]:
            if not isinstance(values, Mapping):
                raise BackendError(f"physics: model() takes a dict {{input name: tensor}}, got {type(values).__name__}")
            missing = [name for name, _ in inputs if name not in values]
            if missing:
                raise BackendError(f"physics: model() needs every input {[n for n, _ in inputs]}; missing {missing}")
            x = (_pack(inputs, values, dev) - x_mean) / x_scale
            y = module(x) * y_scale + y_mean
            return _unpack(outputs, y)

        return model

    def sample(self) -> dict[str, torch.Tensor]:
        """``collocation`` points drawn uniformly in the domain: ``{input: (n, *shape) tensor requiring grad}``."""
        n = self.problem.collocation
        u = torch.rand((n, len(self.lower)), generator=self.generator, device=self.device)
        x = self.lower + u * self.width
        out = _unpack(self.problem.inputs, x)
        return {k: v.detach().requires_grad_(True) for k, v in out.items()}

    def __call__(self, module: torch.nn.Module) -> tuple[torch.Tensor, dict[str, float]]:
        points = self.sample()
        got = self.problem.residual(self.model_fn(module), points)
        terms = _terms(got)
        total: torch.Tensor | None = None
        values: dict[str, float] = {}
        for name, r in terms.items():
            if not isinstance(r, torch.Tensor):
                r = torch.as_tensor(r, dtype=torch.float32, device=self.device)
            term = r.float().square().mean() if r.numel() else r.new_zeros(())
            values[name] = float(term.detach())
            total = term if total is None else total + term
        if total is None:
            raise BackendError("physics: the residual returned no terms (an empty dict or list)")
        if not torch.isfinite(total):
            bad = [k for k, v in values.items() if not math.isfinite(v)]
            raise BackendError(f"physics: the residual is not finite (terms {bad}); check it and the domain")
        return self.problem.weight * total, values


def _pack(layout: Layout, values: Mapping[str, Any], dev: torch.device) -> torch.Tensor:
    cols, n = [], None
    for name, shape in layout:
        v = values[name]
        if isinstance(v, torch.Tensor) and v.ndim == len(shape) + 1:
            n = int(v.shape[0])
            break
    if n is None:
        raise BackendError("physics: model() needs at least one input with a batch axis, shape (n, *shape)")
    for name, shape in layout:
        v = values[name]
        t = v if isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=torch.float32, device=dev)
        try:
            t = torch.broadcast_to(t.to(dev, torch.float32), (n, *shape))
        except RuntimeError:
            raise BackendError(f"physics: model() input {name!r}: expected shape {(n, *shape)}, got {tuple(t.shape)}") from None
        cols.append(t.reshape(n, -1))
    return torch.cat(cols, dim=1)


def _unpack(layout: Layout, matrix: torch.Tensor) -> dict[str, torch.Tensor]:
    out, col = {}, 0
    for name, shape in layout:
        k = math.prod(shape)
        out[name] = matrix[:, col : col + k].reshape(matrix.shape[0], *shape)
        col += k
    return out


def _terms(got: Any) -> dict[str, Any]:
    if isinstance(got, Mapping):
        return {str(k): v for k, v in got.items()}
    if isinstance(got, (list, tuple)):
        return {f"residual[{i}]": v for i, v in enumerate(got)}
    if isinstance(got, torch.Tensor):
        return {"residual": got}
    raise BackendError(f"physics: the residual must return a tensor, or a list/tuple/dict of tensors; got {type(got).__name__}")
