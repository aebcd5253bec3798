"""The training loop both tracking networks share: scaled mean-squared error, Adam with a
one-cycle schedule, the epoch with the best validation loss kept."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch


def fit_scaled_mse(net: torch.nn.Module, X: np.ndarray, Y: np.ndarray, val: np.ndarray, inv: Any, *, epochs: int,
                   batch_size: int, lr: float, seed: int, pct_start: float) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Fit ``net`` to ``X -> Y`` on the rows where ``val`` is False, the loss ``((net(x) - y) * inv)^2``;
    returns it in eval mode at its best validation epoch, and a record of the training."""
    Xt, Yt = torch.from_numpy(X[~val]), torch.from_numpy(Y[~val])
    Xv, Yv = torch.from_numpy(X[val]), torch.from_numpy(Y[val])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * math.ceil(len(Xt) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=pct_start)
    gen = torch.Generator().manual_seed(seed)
    best, best_state, history = math.inf, None, []
    t0 = time.perf_counter()
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(Xt), generator=gen)
        for s in range(0, len(Xt), batch_size):
            idx = perm[s : s + batch_size]
            loss = (((net(Xt[idx]) - Yt[idx]) * inv) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        with torch.no_grad():
            v = float((((net(Xv) - Yv) * inv) ** 2).mean()) if len(Xv) else float(loss)
        history.append(v)
        if v < best:
            best, best_state = v, {k: t.detach().clone() for k, t in net.state_dict().items()}
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return net, {"seconds": time.perf_counter() - t0, "epochs": epochs, "val_loss": history,
                 "parameters": int(sum(p.numel() for p in net.parameters())), "n_train": int(len(Xt)),
                 "n_val": int(len(Xv))}
