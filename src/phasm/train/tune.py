"""``fn.train(search=N)`` / ``phasm.tune(fn, N)``: N network configurations tried, the best one kept.

An Optuna study (TPE sampler, seeded: the same seed tries the same configurations) proposes settings of
the default torch MLP: width (32-512), depth (1-4), activation, learning rate (3e-4 to 1e-2), batch
size, weight decay, the linear skip path and the number of optimisation steps (2,000-20,000; epochs
follow from the batch size).  Each configuration trains on the training split and is scored on the
validation split (the standardised mean squared error is what the sampler minimises); the kept model is
the best by the same ranking ``backend="auto"`` uses (with a tolerance: fewest validation calls outside
it, then the error).  With ``backend="auto"`` a Gaussian process is fitted first, as a baseline the
networks must beat, when the data suit it.  Parameters the user passes are held fixed.

Off by default; needs ``optuna`` (``pip install 'phasm[tune]'``, also in ``all``).  A progress bar shows
the trials when ``verbose=True`` or the error stream is a terminal.  ``time_budget`` (seconds) caps the
whole search: each trial gets an equal share of what is left.

Example
-------
>>> result = fn.train(search=20)          # doctest: +SKIP
>>> print(result.summary())               # the trials, their scores, the one kept   # doctest: +SKIP
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from phasm.backends.base import Backend, FitHistory
from phasm.backends.registry import make_backend
from phasm.bindings.spec import Spec
from phasm.errors import BackendError, BackendUnavailable
from phasm.train.auto import AUTO, GP_CANDIDATE_ROWS, GP_MAX_INPUTS, GP_MAX_OUTPUTS, GP_MAX_ROWS, TIME_BUDGET, \
    jsonable_params, rank_score, score_candidate

__all__ = ["SEARCH_SPACE", "tune_backend"]

SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    "width": (32, 64, 128, 256, 512),
    "depth": (1, 4),
    "activation": ("silu", "tanh", "gelu", "relu"),
    "lr": (3e-4, 1e-2),
    "batch_size": (16, 32, 64, 128, 256, 512),
    "weight_decay": (1e-8, 1e-3),
    "steps": (2000, 20000),
}


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise BackendUnavailable("search= needs optuna, which is not installed; install it with: "
                                 "pip install 'phasm[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _progress(show: bool, trials: int) -> Any:
    if not show:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]search[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("trials"),
                    TextColumn("best {task.fields[best]}"), TimeElapsedColumn(), transient=False)


def _suggest(trial: Any, n_train: int, fixed: dict[str, Any]) -> dict[str, Any]:
    """Torch MLP parameters for one trial (the user's ``fixed`` ones win)."""
    sp = SEARCH_SPACE
    batches = [b for b in sp["batch_size"] if b <= max(16, n_train // 4)] or [16]
    width = trial.suggest_categorical("width", list(sp["width"]))
    depth = trial.suggest_int("depth", *sp["depth"])
    batch = int(trial.suggest_categorical("batch_size", batches))
    steps = trial.suggest_int("steps", *sp["steps"], log=True)
    params = {
        "hidden": (int(width),) * int(depth),
        "activation": trial.suggest_categorical("activation", list(sp["activation"])),
        "lr": trial.suggest_float("lr", *sp["lr"], log=True),
        "batch_size": batch,
        "weight_decay": trial.suggest_float("weight_decay", *sp["weight_decay"], log=True),
        "skip": trial.suggest_categorical("skip", [True, False]),
        "epochs": int(min(5000, max(5, math.ceil(steps / math.ceil(n_train / batch))))),
        "lr_schedule": "cosine",
    }
    params["patience"] = max(30, params["epochs"] // 4)
    return {**params, **fixed}


def tune_backend(spec: Spec, data: Any, *, trials: int, backend: str | Backend, params: dict[str, Any], seed: int,
                 verbose: bool, tolerance: Any = None, time_budget: float | None = None,
                 transforms: Any = None) -> tuple[Backend, FitHistory, float, dict[str, Any]]:
    """Run the search (see the module docstring); returns the kept fitted backend, its history, its fitting
    time and the choice record."""
    if not (isinstance(backend, str) and backend in (AUTO, "torch")):
        name = backend if isinstance(backend, str) else type(backend).__name__
        raise BackendError(f"search=: the search tunes the torch MLP (backend 'torch' or 'auto'), not {name!r}")
    if data.layout.ragged:
        raise BackendError("search=: tunes models of fixed-shape inputs; variable-length inputs train torch-sets")
    optuna = _optuna()
    budget = TIME_BUDGET * max(1.0, trials / 4) if time_budget is None else float(time_budget)
    fixed = {k: v for k, v in params.items() if k != "seed"}
    t_start = time.perf_counter()
    tried: list[dict[str, Any]] = []
    best: tuple[Backend, FitHistory, float, dict[str, Any], str] | None = None

    def consider(label: str, name: str, p: dict[str, Any]) -> float:
        nonlocal best
        est = make_backend(name, **p)
        t0 = time.perf_counter()
        history = est.fit(data, verbose=False)
        seconds = time.perf_counter() - t0
        sc = score_candidate(spec, est, data, tolerance, transforms)
        tried.append({"label": label, "backend": name, "params": jsonable_params(p), "seconds": seconds,
                      "val_mse": sc["mse"], "val_miss": sc["miss"], "val_rel_p90": sc["rel_p90"], "score_text": sc["text"]})
        if best is None or rank_score(sc) < rank_score(best[3]):
            best = (est, history, seconds, sc, label)
        return float(sc["mse"]) if math.isfinite(sc["mse"]) else 1e30

    if backend == AUTO and not fixed and data.n_in <= GP_MAX_INPUTS and data.n_out <= GP_MAX_OUTPUTS \
            and 10 <= data.n_train <= GP_CANDIDATE_ROWS:
        try:
            consider("gp (baseline)", "gp", {"max_train": min(data.n_train, GP_MAX_ROWS), "seed": seed})
        except BackendUnavailable:
            pass
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    progress = _progress(verbose or sys.stderr.isatty(), trials)
    task = progress.add_task("search", total=trials, best="-") if progress else None
    if progress:
        progress.start()
    try:
        for i in range(trials):
            left = budget - (time.perf_counter() - t_start)
            if left <= 0 and best is not None:
                break
            trial = study.ask()
            p = _suggest(trial, data.n_train, fixed)
            p.setdefault("max_seconds", max(left / (trials - i), 2.0))
            p["seed"] = seed
            label = f"trial {trial.number}: MLP {'x'.join(map(str, p['hidden']))} {p['activation']}, batch {p['batch_size']}, lr {p['lr']:.2g}"
            study.tell(trial, consider(label, "torch", p))
            if progress:
                assert best is not None
                progress.update(task, advance=1, best=f"{best[4].split(':')[0]} ({best[3]['text'].split(',')[0]})")
    finally:
        if progress:
            progress.stop()
    if best is None:
        raise BackendError("search=: no configuration was trained (time_budget too small?)")
    est, history, seconds, sc, label = best
    spent = time.perf_counter() - t_start
    why = (f"{label}: best of {len(tried)} configurations (Optuna TPE, seed {seed}) on the validation split, "
           f"{spent:.0f} s")
    choice = {"mode": "search", "chosen": label, "why": why, "candidates": tried, "trials": trials,
              "time_budget": budget}
    return est, history, seconds, choice
