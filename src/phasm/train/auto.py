"""``backend="auto"`` (the default): the backend and its settings chosen from the data.

No single model suits every function a user brings.  For small, low-dimensional captures a Gaussian
process is usually the most accurate model there is, and quick to fit; as rows or dimensions grow, a
network (its width, depth, batch size, epochs and learning-rate schedule sized from the rows and
variables, so that small data still gets thousands of optimisation steps) takes over.  ``auto`` tries
the eligible candidates, cheapest first, within a time budget, scores each on the validation split,
and keeps the best:

* candidates: ``gp`` (at most :data:`GP_MAX_INPUTS` input columns read by the model, at most
  :data:`GP_MAX_ROWS` training rows used, scikit-learn installed), then ``torch`` (an MLP sized by
  :func:`mlp_settings`); variable-length inputs: ``torch-sets``, sized the same way;
* score: with a tolerance (``fn.train()`` of a surrogate that has one), the share of validation
  calls outside it, on the caller's scale; else (and to break ties) the mean squared validation error
  in standardised units;
* a candidate that is already *good enough* ends the search: with a tolerance, validation misses below a
  quarter of ``max_miss_rate``; without, a standardised validation RMSE below :data:`GOOD_RMSE`;
* the network gets the time the budget has left (its cosine schedule anneals over it).

Parameters the user passes (``fn.train(epochs=300)``) restrict the candidates to the backends that take
them and override the sized settings.  What was tried, with its score and time, and why the pick was
made, lands in :attr:`TrainResult.choice <phasm.train.package.TrainResult>` and the model's training record.

Example
-------
>>> mlp_settings(720, 3, 1)["batch_size"], mlp_settings(720, 3, 1)["epochs"]
(32, 348)
>>> mlp_settings(200_000, 8, 2)["hidden"]
(256, 256, 256)
"""

from __future__ import annotations

import inspect
import math
import time
from typing import Any

import numpy as np

from phasm.backends.base import Backend, FitHistory
from phasm.backends.registry import get_backend, make_backend
from phasm.bindings.spec import Spec
from phasm.errors import BackendError, BackendUnavailable
from phasm.train.metrics import per_call_relative_error

__all__ = ["AUTO", "GOOD_RMSE", "GP_MAX_INPUTS", "GP_MAX_ROWS", "TIME_BUDGET", "fit_auto", "jsonable_params",
           "mlp_settings", "rank_score", "score_candidate", "sets_settings"]

AUTO = "auto"
TIME_BUDGET = 300.0  # seconds for all candidates together (the network gets what is left)
GP_MAX_INPUTS = 10
GP_MAX_OUTPUTS = 1024  # one kernel for every output: a field of a few parameters suits it
GP_MAX_ROWS = 2000  # rows a GP conditions on (O(n^3) once, O(n) per call)
GP_CANDIDATE_ROWS = 20_000  # beyond this many training rows a network is the better use of the time
GOOD_RMSE = 1e-3  # standardised validation RMSE that needs no further candidate (without a tolerance)
TARGET_STEPS = 8000  # optimisation steps a small data set gets


def mlp_settings(n_train: int, n_in: int, n_out: int) -> dict[str, Any]:
    """Settings of the default torch MLP for ``n_train`` rows of ``n_in`` -> ``n_out`` columns.

    Batch size about ``n_train / 32`` (a power of two in 32..512); epochs so that training takes at
    least :data:`TARGET_STEPS` optimisation steps (30..3000 epochs); width 64 below 3,000 rows, 128
    below 50,000, else 256 (at least ``min(n_out, 256)``); two hidden layers, three from 10,000 rows; a
    linear skip path; Adam at 2e-3 (3e-3 for batches of 32) with a cosine schedule; early stopping
    after a quarter of the epochs without improvement; one CPU thread for small networks (their
    matrix products are too small to share; on a GPU it does not apply).
    """
    n = max(int(n_train), 1)
    batch = int(min(512, max(32, 2 ** round(math.log2(max(n / 32, 1))))))
    steps_per_epoch = math.ceil(n / batch)
    epochs = int(min(3000, max(30, math.ceil(TARGET_STEPS / steps_per_epoch))))
    width = 64 if n < 3000 else 128 if n < 50_000 else 256
    width = max(width, min(int(n_out), 256))
    depth = 2 if n < 10_000 else 3
    return {"hidden": (width,) * depth, "epochs": epochs, "batch_size": batch,
            "lr": 3e-3 if batch <= 32 else 2e-3, "lr_schedule": "cosine", "patience": max(30, epochs // 4),
            "skip": True, **({"threads": 1} if width <= 128 and batch <= 128 else {})}


def sets_settings(n_train: int) -> dict[str, Any]:
    """Settings of the DeepSets network (``torch-sets``): batch size and epochs sized as :func:`mlp_settings`."""
    m = mlp_settings(n_train, 1, 1)
    return {"epochs": m["epochs"], "batch_size": m["batch_size"], "patience": m["patience"]}


def _takes(name: str, params: dict[str, Any]) -> bool:
    """Backend ``name`` is installed and its constructor takes every key of ``params``."""
    try:
        cls = get_backend(name)
    except BackendError:
        return False
    sig = inspect.signature(cls.__init__)
    if any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
        return True
    return set(params) <= set(sig.parameters) - {"self"}


def _candidates(data: Any, params: dict[str, Any], seed: int) -> list[tuple[str, str, dict[str, Any]]]:
    """``(label, backend, params)`` to try, cheapest first."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    user = dict(params)
    user.pop("seed", None)
    if data.layout.ragged:
        return [("torch-sets", "torch-sets", {**sets_settings(data.n_train), **user, "seed": seed})]
    gp_ok = (data.n_in <= GP_MAX_INPUTS and data.n_out <= GP_MAX_OUTPUTS and 10 <= data.n_train <= GP_CANDIDATE_ROWS)
    if gp_ok and _takes("gp", user):
        out.append(("gp", "gp", {"max_train": min(data.n_train, GP_MAX_ROWS), **user, "seed": seed}))
    if _takes("torch", user):
        sized = mlp_settings(data.n_train, data.n_in, data.n_out)
        out.append(("torch MLP " + "x".join(map(str, user.get("hidden", sized["hidden"]))), "torch",
                    {**sized, **user, "seed": seed}))
    if not out and user:
        for name in ("ridge", "ensemble"):  # parameters only these take (degree=, member=...)
            if _takes(name, user):
                out.append((name, name, {**user, **({"seed": seed} if _takes(name, {"seed": 0}) else {})}))
                break
    if not out:
        raise BackendError(f"backend 'auto': no candidate backend (gp, torch) takes the parameters "
                           f"{sorted(user)}; name the backend (backend=...) they belong to")
    return out


def score_candidate(spec: Spec, est: Backend, data: Any, tolerance: Any = None,
                    transforms: Any = None) -> dict[str, Any]:
    """Validation scores of a fitted candidate: standardised MSE, the caller-scale relative error p90, and,
    with a ``tolerance``, the share of validation calls outside it."""
    from phasm.train.artefact import ModelArtefact

    if not data.n_val:
        return {"mse": math.nan, "miss": math.nan, "rel_p90": math.nan, "text": "no validation rows"}
    Xv, Yv = data.validation()
    with np.errstate(all="ignore"):
        Z = np.asarray(est.predict(Xv), np.float64)
        mse = float(np.mean((Z - np.asarray(Yv, np.float64)) ** 2))
        art = ModelArtefact(spec, est, data.x_norm, data.y_norm, transforms=transforms, columns=getattr(data, "columns", None))
        Xr, Yr = data.raw_validation()
        P = art.predict(Xr)
        rel = np.zeros(len(Yr))
        col = 0
        for v in spec.outputs:
            rel = np.maximum(rel, per_call_relative_error(Yr[:, col : col + v.size], P[:, col : col + v.size]))
            col += v.size
    if not math.isfinite(mse):
        mse = math.inf
    out: dict[str, Any] = {"mse": mse, "rel_p90": float(np.quantile(rel, 0.9)), "miss": math.nan}
    text = f"validation MSE {mse:.3g} (standardised), relative error p90 {out['rel_p90']:.3%}"
    if tolerance is not None:
        miss = tolerance.misses(spec, np.asarray(Yr, np.float64), np.asarray(P, np.float64))
        out["miss"] = float(np.mean(miss))
        text = f"{out['miss']:.2%} of {len(Yr)} validation calls outside the tolerance; " + text
    out["text"] = text
    return out


def rank_score(sc: dict[str, Any]) -> tuple[float, float]:
    """Sort key of a :func:`score_candidate` result: validation misses first, then the error."""
    miss = sc["miss"] if math.isfinite(sc["miss"]) else 0.0
    return (miss, sc["mse"] if math.isfinite(sc["mse"]) else math.inf)


def _good_enough(sc: dict[str, Any], tolerance: Any) -> bool:
    if tolerance is not None and math.isfinite(sc["miss"]):
        return bool(sc["miss"] <= 0.25 * float(tolerance.max_miss_rate))
    return bool(math.isfinite(sc["mse"]) and math.sqrt(sc["mse"]) <= GOOD_RMSE)


def fit_auto(spec: Spec, data: Any, *, params: dict[str, Any], seed: int, verbose: bool, tolerance: Any = None,
             time_budget: float | None = None, transforms: Any = None) -> tuple[Backend, FitHistory, float, dict[str, Any]]:
    """Fit the candidates on ``data`` (see the module docstring); returns the chosen fitted backend, its
    history, its fitting time and the choice record."""
    budget = TIME_BUDGET if time_budget is None else float(time_budget)
    t_start = time.perf_counter()
    tried: list[dict[str, Any]] = []
    best: tuple[Backend, FitHistory, float, dict[str, Any]] | None = None
    stop_reason = ""
    candidates = _candidates(data, params, seed)
    for i, (label, name, p) in enumerate(candidates):
        left = budget - (time.perf_counter() - t_start)
        if best is not None and left <= 0:
            stop_reason = f"; {', '.join(c[0] for c in candidates[i:])} not tried: the {budget:g} s budget was spent"
            break
        if name == "torch" and "max_seconds" not in params:
            p = {**p, "max_seconds": max(left, 5.0)}
        try:
            est = make_backend(name, **p)
        except BackendUnavailable:
            continue
        t0 = time.perf_counter()
        history = est.fit(data, verbose=verbose)
        seconds = time.perf_counter() - t0
        sc = score_candidate(spec, est, data, tolerance, transforms) if len(candidates) > 1 else \
            {"mse": math.nan, "miss": math.nan, "rel_p90": math.nan, "text": "the only candidate"}
        tried.append({"label": label, "backend": name, "params": jsonable_params(p), "seconds": seconds,
                      "val_mse": sc["mse"], "val_miss": sc["miss"], "val_rel_p90": sc["rel_p90"], "score_text": sc["text"]})
        if best is None or rank_score(sc) < rank_score(best[3]):
            best = (est, history, seconds, sc)
        if len(candidates) > 1 and _good_enough(sc, tolerance) and i + 1 < len(candidates):
            rest = ", ".join(c[0] for c in candidates[i + 1 :])
            stop_reason = (f"; good enough, so {rest} not tried ("
                           + (f"validation misses <= a quarter of max_miss_rate {tolerance.max_miss_rate:g}"
                              if tolerance is not None else f"standardised validation RMSE <= {GOOD_RMSE:g}") + ")")
            break
    if best is None:
        raise BackendError("backend 'auto': no candidate backend is installed (pip install 'phasm[torch]' or 'phasm[sklearn]')")
    est, history, seconds, sc = best
    chosen = next(c for c in tried if c["seconds"] == seconds and c["backend"] == est.name)
    shape = f"{data.n_train} training rows, {data.n_in} input and {data.n_out} output columns"
    if len(tried) == 1 and len(candidates) == 1:
        why = f"{chosen['label']}: the one candidate for {shape}"
    else:
        why = f"{chosen['label']}: best on the validation split of {len(tried)} tried for {shape}{stop_reason}"
    choice = {"mode": AUTO, "chosen": chosen["label"], "why": why, "candidates": tried, "time_budget": budget}
    return est, history, seconds, choice


def jsonable_params(p: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a candidate that a JSON training record can hold."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()
            if isinstance(v, (int, float, str, bool, tuple, list, type(None)))}
