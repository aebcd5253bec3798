"""The default torch MLP as plain arrays, read once for every consumer that rebuilds it elsewhere.

The ONNX graph writer (:mod:`phasm.backends.onnx_graph`) and the C exporter
(:mod:`phasm.export.plan`) both rebuild a trained network from its weights.
They share this reader, so both accept exactly the same modules: ``Linear``
layers with bias and the activations in :data:`ACTIVATION_NAMES` at their
default settings, optionally behind a column selection and beside a linear
skip path.  Anything else is refused with the reason, never approximated.

Example
-------
>>> import torch
>>> net = describe_mlp(torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)))
>>> [layer[0] for layer in net.layers], net.layers[0][1].shape
(['linear', 'act', 'linear'], (8, 3))
>>> describe_mlp(torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(), torch.nn.Linear(8, 1)))
Traceback (most recent call last):
...
phasm.errors.NotDescribable: has a Dropout layer; known: Linear layers and the activations relu, silu, gelu, tanh, elu, softplus
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from phasm.errors import NotDescribable

ACTIVATION_NAMES = ("relu", "silu", "gelu", "tanh", "elu", "softplus")


@dataclass
class DenseNet:
    """An MLP as plain arrays: ``layers`` of ``("linear", W (out, in), b)`` or ``("act", name)``.

    ``select``: input columns the network reads (``None``: all); ``skip``: ``(W, b)`` of a linear
    path from the (selected) input straight to the output, added to the MLP's output.
    """

    layers: list[tuple[Any, ...]]
    select: np.ndarray | None = None
    skip: tuple[np.ndarray, np.ndarray] | None = None


def describe_mlp(module: Any) -> DenseNet:
    """The :class:`DenseNet` of a module built by the torch backend's ``build_mlp`` (optionally behind
    ``SelectColumns``); :class:`~phasm.errors.NotDescribable` naming what is not a plain MLP."""
    import torch

    from phasm.backends.torch_nets import SelectColumns, SkipMLP

    select = None
    if isinstance(module, torch.nn.Sequential) and len(module) == 2 and isinstance(module[0], SelectColumns):
        select = module[0].index.detach().cpu().numpy().astype(np.int64)
        module = module[1]
    skip = None
    if isinstance(module, SkipMLP):
        skip = (as_float32(module.linear.weight), as_float32(module.linear.bias))
        module = module.mlp
    if not isinstance(module, torch.nn.Sequential):
        raise NotDescribable(f"is a {type(module).__name__}, not the default MLP")
    layers: list[tuple[Any, ...]] = []
    for layer in module:
        if type(layer) is torch.nn.Linear and layer.bias is not None:
            layers.append(("linear", as_float32(layer.weight), as_float32(layer.bias)))
            continue
        layers.append(("act", activation_name(layer)))
    if not layers or layers[0][0] != "linear" or layers[-1][0] != "linear":
        raise NotDescribable("does not start and end with a Linear layer")
    return DenseNet(layers, select, skip)


def activation_name(layer: Any) -> str:
    """The name of an activation module at its default settings; :class:`~phasm.errors.NotDescribable` else."""
    import torch

    kinds = {torch.nn.ReLU: "relu", torch.nn.SiLU: "silu", torch.nn.Tanh: "tanh", torch.nn.GELU: "gelu",
             torch.nn.ELU: "elu", torch.nn.Softplus: "softplus"}
    name = kinds.get(type(layer))
    if name is None:
        raise NotDescribable(f"has a {type(layer).__name__} layer; known: Linear layers and the activations "
                             f"{', '.join(ACTIVATION_NAMES)}")
    # Only the default settings are rebuilt: refuse others rather than compute them wrong.
    if name == "gelu" and layer.approximate != "none":
        raise NotDescribable(f"uses GELU(approximate={layer.approximate!r}); only the exact GELU is known")
    if name == "elu" and float(layer.alpha) != 1.0:
        raise NotDescribable(f"uses ELU(alpha={layer.alpha}); only alpha=1 is known")
    if name == "softplus" and (float(layer.beta) != 1.0 or float(layer.threshold) != 20.0):
        # threshold 20 only saves time (log(1 + e^x) == x in float32 there); another threshold changes values
        raise NotDescribable(f"uses Softplus(beta={layer.beta}, threshold={layer.threshold}); only beta=1, "
                             "threshold=20 is known")
    return name


def as_float32(t: Any) -> np.ndarray:
    """A torch tensor as a contiguous float32 numpy array (detached, on the CPU)."""
    return np.ascontiguousarray(t.detach().cpu().numpy(), np.float32)
