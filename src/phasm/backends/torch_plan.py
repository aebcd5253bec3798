"""The inference plan of the default torch MLP: its forward as plain functional ops.

``nn.Module.__call__`` dominates the batch-1 latency of small networks; the
plan runs the same kernels (``addmm`` and the activation) on the module's own
weight tensors without it, bitwise the same output.  With the standardisation
folded in (:func:`inference_plan` with ``fold=``), the plan maps raw inputs to
raw outputs in one pass.  Given ``out``, a float32 tensor of the output's shape, the plan
writes its answer there (the last ``addmm`` or skip sum targets it), so the caller's
buffer receives the rows with no intermediate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from phasm.backends.torch_nets import SelectColumns, SkipMLP

_FUNCTIONAL = {
    torch.nn.ReLU: torch.relu, torch.nn.SiLU: torch.nn.functional.silu, torch.nn.GELU: torch.nn.functional.gelu,
    torch.nn.Tanh: torch.tanh, torch.nn.ELU: torch.nn.functional.elu, torch.nn.Softplus: torch.nn.functional.softplus,
}


def inference_plan(module: torch.nn.Module, fold: tuple[np.ndarray, ...] | None = None) -> Any:
    """A plain function computing the default MLP with functional ops on its (shared) weight tensors.

    Same arithmetic as ``module(x)`` (the same ``addmm``/activation kernels), without the
    ``nn.Module.__call__`` machinery, which dominates batch-1 latency of small networks.
    With ``fold=(x_mean, x_scale, y_mean, y_scale)`` the plan takes raw inputs and returns raw
    outputs: the standardisation is folded (in float64, then cast) into new copies of the first
    and last affine maps.  Returns ``None`` for anything but the modules :func:`build_mlp` makes.
    """
    select = None
    if isinstance(module, torch.nn.Sequential) and len(module) == 2 and isinstance(module[0], SelectColumns):
        select, module = module[0].index, module[1]
    skip = None
    if isinstance(module, SkipMLP):
        skip, module = module.linear, module.mlp
    if not isinstance(module, torch.nn.Sequential):
        return None
    steps: list[tuple[str, Any]] = []
    for layer in module:
        if type(layer) is torch.nn.Linear:
            steps.append(("linear", (layer.weight.detach().t(), layer.bias.detach())))
        elif type(layer) in _FUNCTIONAL:
            steps.append(("act", _FUNCTIONAL[type(layer)]))
        else:
            return None
    skip_w = (skip.weight.detach().t(), skip.bias.detach()) if skip is not None else None
    if fold is not None:
        linears = [i for i, (kind, _) in enumerate(steps) if kind == "linear"]
        if not linears:
            return None
        steps, skip_w = _fold(steps, skip_w, linears[0], linears[-1], select, *fold)
    addmm = torch.addmm
    last = len(steps) - 1
    # With an output tensor, the last affine map (or the skip sum) writes straight into it.
    into = steps[last][0] == "linear" if steps else False

    def run(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        if select is not None:
            x = x.index_select(1, select)
        h = x
        for i, (kind, arg) in enumerate(steps):
            if kind != "linear":
                h = arg(h)
            elif out is not None and into and i == last and skip_w is None:
                h = addmm(arg[1], h, arg[0], out=out)
            else:
                h = addmm(arg[1], h, arg[0])
        if skip_w is not None:
            h = addmm(skip_w[1], x, skip_w[0]) + h if out is None else torch.add(addmm(skip_w[1], x, skip_w[0]), h, out=out)
        elif out is not None and h is not out:
            out.copy_(h)
            h = out
        return h

    return run


def _fold(steps: list, skip_w: Any, first: int, last: int, select: Any, x_mean: np.ndarray, x_scale: np.ndarray,
          y_mean: np.ndarray, y_scale: np.ndarray) -> tuple[list, Any]:
    """Steps and skip weights that map raw x to raw y: ``W' = W / s_x``, ``b' = b - (m_x / s_x) W`` on
    the input side; ``W' = W s_y``, ``b' = b s_y + m_y`` on the output side (the skip path is scaled
    by ``s_y`` too; ``m_y`` is added once)."""
    m, s = np.asarray(x_mean, np.float64), np.asarray(x_scale, np.float64)
    if select is not None:
        idx = select.cpu().numpy()
        m, s = m[idx], s[idx]
    my, sy = np.asarray(y_mean, np.float64), np.asarray(y_scale, np.float64)

    def in_side(wt: torch.Tensor, b: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        w = wt.cpu().double().numpy()  # (n_in, n_hidden): the transposed weight addmm uses
        return w / s[:, None], b.cpu().double().numpy() - (m / s) @ w

    def tensor(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(like.device)

    steps = list(steps)
    arrays = {}
    for i in {first, last}:
        wt, b = steps[i][1]
        w, bb = in_side(wt, b) if i == first else (wt.cpu().double().numpy(), b.cpu().double().numpy())
        if i == last:
            w, bb = w * sy[None, :], bb * sy + my
        arrays[i] = (tensor(w, wt), tensor(bb, b))
    for i, (w, b) in arrays.items():
        steps[i] = ("linear", (w, b))
    if skip_w is not None:
        w, b = in_side(*skip_w)
        skip_w = (tensor(w * sy[None, :], skip_w[0]), tensor(b * sy, skip_w[1]))
    return steps, skip_w


