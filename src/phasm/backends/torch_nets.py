"""The torch networks phasm builds: an MLP, optionally with a linear skip path and an input selection.

Only backends import this module (it imports torch).

Example
-------
>>> build_mlp(3, 2, hidden=(8,), activation="tanh")
Sequential(
  (0): Linear(in_features=3, out_features=8, bias=True)
  (1): Tanh()
  (2): Linear(in_features=8, out_features=2, bias=True)
)
"""

from __future__ import annotations

from typing import Sequence

import torch

from phasm.backends.base import BackendError

ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    "relu": torch.nn.ReLU,
    "silu": torch.nn.SiLU,
    "gelu": torch.nn.GELU,
    "tanh": torch.nn.Tanh,
    "elu": torch.nn.ELU,
    "softplus": torch.nn.Softplus,
}


class SelectColumns(torch.nn.Module):
    """Keeps the input columns listed in ``index`` (the ones that varied in training)."""

    index: torch.Tensor

    def __init__(self, index: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("index", index.to(torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, self.index)


class SkipMLP(torch.nn.Module):
    """``linear(x) + mlp(x)``: an MLP plus a linear path from input to output.

    The linear path captures the linear part of the response exactly (for a
    linear problem, such as a Poisson solve, it is the whole answer); the MLP
    learns the rest.
    """

    def __init__(self, linear: torch.nn.Linear, mlp: torch.nn.Sequential) -> None:
        super().__init__()
        self.linear = linear
        self.mlp = mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.mlp(x)


def build_mlp(n_in: int, n_out: int, hidden: Sequence[int] = (128, 128), activation: str = "silu",
              *, seed: int | None = 0, skip: bool = False) -> torch.nn.Module:
    """A float32 MLP ``n_in -> hidden... -> n_out`` with a linear output layer.

    ``seed`` fixes the initial weights without touching torch's global RNG
    (``None``: use the global RNG).  ``skip=True`` adds a linear path from
    input to output (:class:`SkipMLP`).
    """
    if activation not in ACTIVATIONS:
        raise BackendError(f"torch: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    widths = [int(n_in), *(int(h) for h in hidden), int(n_out)]
    if any(w < 1 for w in widths):
        raise BackendError(f"torch: layer widths must be >= 1, got n_in={n_in}, hidden={list(hidden)}, n_out={n_out}")
    layers: list[torch.nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(int(seed))
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(ACTIVATIONS[activation]())
        mlp = torch.nn.Sequential(*layers).float()
        if not skip:
            return mlp
        linear = torch.nn.Linear(int(n_in), int(n_out))
        torch.nn.init.zeros_(linear.weight)
        torch.nn.init.zeros_(linear.bias)
    return SkipMLP(linear.float(), mlp)
