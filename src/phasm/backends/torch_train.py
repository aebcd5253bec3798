"""A reusable torch training loop: Adam, LR schedule, streamed mini-batches, early stopping.

Other torch backends (set encoders, deep ensembles) call :func:`train_module`
with their own ``torch.nn.Module``; it trains in standardised units on a
:class:`~phasm.backends.base.TrainingData` and returns a
:class:`~phasm.backends.base.FitHistory`.  This module imports torch, so only
backends import it (never ``import phasm``).

Example
-------
>>> import numpy as np
>>> from phasm.train.data import ArrayData
>>> from phasm.backends.torch_mlp import build_mlp
>>> X = np.random.default_rng(0).uniform(-1, 1, (256, 2)); Y = np.sin(X).sum(1, keepdims=True)
>>> data = ArrayData(X, Y, val_fraction=0.25, seed=0)
>>> net = build_mlp(2, 1, hidden=(16,), seed=0)
>>> hist = train_module(net, data, epochs=3, batch_size=64, seed=0)
>>> hist.epochs
3
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import torch

from phasm.backends.base import BackendError, FitHistory, TrainingData

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
PhysicsFn = Callable[[torch.nn.Module], tuple[torch.Tensor, dict[str, float]]]


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given, else ``cuda`` when available, else ``cpu``."""
    if device:
        try:
            return torch.device(device)
        except RuntimeError as exc:
            raise BackendError(f"torch: device must be a torch device name like 'cpu' or 'cuda:0', got {device!r} ({exc})") from None
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _progress(verbose: bool, epochs: int) -> Any:
    if not verbose:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]training[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("epochs"),
        TextColumn("train {task.fields[train]:.3e}  val {task.fields[val]:.3e}"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), transient=False,
    )


def evaluate(module: torch.nn.Module, X: np.ndarray, Y: np.ndarray, device: torch.device,
             loss_fn: LossFn | None = None, batch_size: int = 8192) -> float:
    """Mean loss of ``module`` on ``(X, Y)`` (standardised float32), in batches; NaN when empty."""
    if len(X) == 0:
        return float("nan")
    loss_fn = loss_fn or torch.nn.functional.mse_loss
    was_training = module.training
    module.eval()
    total = 0.0
    with torch.inference_mode():
        for s in range(0, len(X), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(X[s : s + batch_size])).to(device)
            yb = torch.from_numpy(np.ascontiguousarray(Y[s : s + batch_size])).to(device)
            total += float(loss_fn(module(xb), yb)) * len(xb)
    module.train(was_training)
    return total / len(X)


def train_module(
    module: torch.nn.Module,
    data: TrainingData,
    *,
    epochs: int = 200,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    lr_schedule: str = "cosine",
    patience: int | None = 30,
    min_delta: float = 0.0,
    seed: int = 0,
    device: str | torch.device | None = None,
    loss_fn: LossFn | None = None,
    threads: int | None = None,
    verbose: bool = False,
    physics: PhysicsFn | None = None,
    max_seconds: float | None = None,
) -> FitHistory:
    """Train ``module`` in place on ``data`` and restore the weights of the best validation epoch.

    Mini-batches come from ``data.train_batches`` (streamed: a store larger
    than memory trains); each epoch uses the seed ``seed + epoch``, so a fixed
    seed gives the same weights on CPU.  ``lr_schedule``: ``"cosine"``
    (annealed to 1% of ``lr`` over ``epochs``), ``"plateau"`` (halved after
    ``patience // 3`` epochs without improvement) or ``"none"``.  Training
    stops early after ``patience`` epochs without a validation improvement
    larger than ``min_delta`` (``None``: never); without a validation split
    the training loss decides.  ``threads``: torch CPU threads while
    training (restored afterwards; ``None`` keeps torch's setting; 1 is
    often fastest for small networks or on a busy machine).  ``verbose``
    shows a rich progress bar.

    ``physics``: a physics loss (:class:`~phasm.backends.torch_physics.PhysicsLoss`),
    ``physics(module) -> (loss, {term: value})``, added to the data loss at every
    step (with no captured rows, an epoch is one physics-only step); the history's
    notes get ``physics_loss`` (per epoch) and ``physics_terms`` (each term's mean
    square in the last epoch).  Without validation rows a physics run neither
    stops early nor restores an earlier epoch: its loss is measured on fresh
    collocation points each step, so the lowest value is partly luck.
    ``max_seconds``: stop after this much training time (checked after each
    epoch); the cosine schedule then anneals over whichever of ``epochs`` and
    the time runs out first, so a time-boxed run still ends at a low rate.
    """
    if int(epochs) < 1:
        raise BackendError(f"torch: epochs must be >= 1, got {epochs}")
    if int(batch_size) < 1:
        raise BackendError(f"torch: batch_size must be >= 1, got {batch_size}")
    if lr_schedule not in ("cosine", "plateau", "none"):
        raise BackendError(f"torch: lr_schedule must be 'cosine', 'plateau' or 'none', got {lr_schedule!r}")
    if max_seconds is not None and not float(max_seconds) > 0:
        raise BackendError(f"torch: max_seconds must be > 0, got {max_seconds}")
    dev = device if isinstance(device, torch.device) else pick_device(device)
    loss_fn = loss_fn or torch.nn.functional.mse_loss
    module.to(dev)
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise BackendError("torch: the module has no trainable parameters")
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    timed_cosine = lr_schedule == "cosine" and max_seconds is not None
    if lr_schedule == "cosine" and not timed_cosine:
        sched: Any = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(epochs), eta_min=lr * 0.01)
    elif lr_schedule == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=max(1, (patience or 30) // 3))
    else:
        sched = None
    physics_only = physics is not None and data.n_train == 0
    keep_best = physics is None or data.n_val > 0
    Xv, Yv = data.validation() if data.n_val else (np.empty((0, data.n_in), np.float32), np.empty((0, data.n_out), np.float32))
    hist = FitHistory(device=str(dev))
    best = math.inf
    best_state: dict[str, torch.Tensor] | None = None
    since_best = 0
    t0 = time.perf_counter()
    progress = _progress(verbose, int(epochs))
    task = progress.add_task("fit", total=int(epochs), train=float("nan"), val=float("nan")) if progress else None
    if progress:
        progress.start()
    old_threads = torch.get_num_threads()
    if threads is not None:
        if int(threads) < 1:
            raise BackendError(f"torch: threads must be >= 1, got {threads}")
        torch.set_num_threads(int(threads))
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)  # dropout etc. inside the module: reproducible
        for epoch in range(int(epochs)):
            module.train()
            total, rows, phys_total, steps = 0.0, 0, 0.0, 0
            term_sums: dict[str, float] = {}
            batches = data.train_batches(int(batch_size), seed=seed + epoch, shuffle=True) if not physics_only else [(None, None)]
            for xb_np, yb_np in batches:
                if xb_np is not None and len(xb_np) == 0:
                    continue
                opt.zero_grad(set_to_none=True)
                loss = torch.zeros((), device=dev)
                if xb_np is not None:
                    xb = torch.from_numpy(np.ascontiguousarray(xb_np, np.float32)).to(dev, non_blocking=True)
                    yb = torch.from_numpy(np.ascontiguousarray(yb_np, np.float32)).to(dev, non_blocking=True)
                    loss = loss_fn(module(xb), yb)
                if physics is not None:
                    phys, terms = physics(module)
                    loss = loss + phys
                    phys_total += float(phys.detach())
                    steps += 1
                    for k, v in terms.items():
                        term_sums[k] = term_sums.get(k, 0.0) + v
                if not torch.isfinite(loss):
                    raise BackendError(f"torch: training diverged at epoch {epoch + 1} (loss {float(loss)}); lower lr (now {lr})")
                loss.backward()
                opt.step()
                n_rows = len(xb_np) if xb_np is not None else 1
                total += float(loss.detach()) * n_rows
                rows += n_rows
            train_loss = total / max(rows, 1)
            if physics is not None:
                hist.notes.setdefault("physics_loss", []).append(phys_total / max(steps, 1))
                hist.notes["physics_terms"] = {k: v / max(steps, 1) for k, v in term_sums.items()}  # last epoch, unweighted
            val_loss = evaluate(module, Xv, Yv, dev, loss_fn) if len(Xv) else train_loss
            hist.train_loss.append(train_loss)
            if len(Xv):
                hist.val_loss.append(val_loss)
            hist.epochs = epoch + 1
            if not keep_best:
                best, hist.best_epoch = min(best, val_loss), epoch + 1
            elif val_loss < best - min_delta:
                best, since_best, hist.best_epoch = val_loss, 0, epoch + 1
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            else:
                since_best += 1
            elapsed = time.perf_counter() - t0
            if timed_cosine:
                done = max((epoch + 1) / int(epochs), elapsed / float(max_seconds))  # type: ignore[arg-type]
                for group in opt.param_groups:
                    group["lr"] = lr * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0))))
            elif isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step(val_loss)
            elif sched is not None:
                sched.step()
            if progress:
                progress.update(task, advance=1, train=train_loss, val=val_loss)
            if keep_best and patience is not None and since_best >= int(patience):
                hist.notes["stopped_early"] = True
                break
            if max_seconds is not None and elapsed >= float(max_seconds):
                hist.notes["stopped_by_time"] = True
                break
    finally:
        torch.random.set_rng_state(gen_state)
        torch.set_num_threads(old_threads)
        if progress:
            progress.stop()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    hist.seconds = time.perf_counter() - t0
    hist.notes.setdefault("stopped_early", False)
    if max_seconds is not None:
        hist.notes.setdefault("stopped_by_time", False)
    hist.notes["seconds_per_epoch"] = hist.seconds / max(hist.epochs, 1)
    hist.notes["best_val_loss"] = best
    hist.notes["final_lr"] = float(opt.param_groups[0]["lr"])
    return hist

