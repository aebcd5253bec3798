"""Adaptive sampling (active learning): spend the original's calls where the surrogate is least sure.

Each round trains a model with a certified trust gate on everything stored so
far (an ensemble by default, its members trained in parallel on the Dask
workers) and scores a pool of candidate points spread over the space, in units
of the tolerance: the ensemble's spread (its members' disagreement), combined
with the model's actual error at the nearest stored rows (bias the members
share); a candidate the gate would send back to the original counts double.
Then it runs the next batch on the cluster:

- most of the batch (``1 - explore``) at the highest-scoring candidates, each
  pick damping the scores of candidates near it (local penalisation), so a batch
  covers a region where the gate falls back instead of piling onto one point;
- the rest (``explore``) where the design is sparsest, so no region is left
  unseen for good.

After each training the report gives the fallback rate the gate would have on
calls spread uniformly over the space (measured on the candidate pool, no
original call needed), its certificate, and the validation error.

Example
-------
>>> res = phasm.sample(f, {"x": (0, 1), "y": (0, 1)}, 256, adaptive=4, adaptive_batch=64)   # doctest: +SKIP
>>> [(r.calls, round(r.fallback_rate, 3)) for r in res.rounds]                               # doctest: +SKIP
[(256, 0.31), (320, 0.12), (384, 0.05), (448, 0.02), (512, 0.01)]
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from phasm.bindings.spec import Spec, pack
from phasm.errors import SampleError
from phasm.gate.tolerance import Tolerance
from phasm.sampling.design import unit_design
from phasm.sampling.runfile import SampleRun, read_progress
from phasm.sampling.worker import SampleJob

DEFAULT_TRAIN = {"backend": "ensemble", "member": "torch", "k": 5}


@dataclass
class RoundReport:
    """One training of an adaptive run: how many original calls it cost so far, and how good the gate is."""

    round: int
    calls: int
    rows: int
    fallback_rate: float
    certified: bool
    miss_rate_bound: float
    expected_fallback_rate: float
    validation: dict[str, dict[str, float]] = field(default_factory=dict)
    added: int = 0
    train_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        err = ", ".join(f"{k} rel p50 {v['rel_p50']:.2%} p99 {v['rel_p99']:.2%}" for k, v in self.validation.items())
        return (f"round {self.round}: {self.calls} calls, fallback {self.fallback_rate:.1%} over the space"
                f" ({'certified' if self.certified else 'not certified'}, miss bound {self.miss_rate_bound:.2%}); {err}")


def model_inputs(job: SampleJob, spec: Spec, points: np.ndarray) -> np.ndarray:
    """Model input rows ``(n, n_in_features)`` for design points, bound as a call would bind them."""
    values: dict[str, list[Any]] = {v.name: [] for v in spec.inputs}  # type: ignore[misc]
    for p in points:
        _, frame = job.bind(job.space.arguments(p))
        for v in spec.inputs:
            values[v.name].append(np.asarray(v.optic.get(frame), v.dtype))  # type: ignore[union-attr,index]
    return pack(spec.inputs, {k: np.stack(a) for k, a in values.items()}, len(points), np.float32)


def tolerance_ratio(tolerance: Tolerance, spec: Spec, Y_true: np.ndarray, Y_pred: np.ndarray) -> np.ndarray:
    """Per row, the error in units of what the tolerance allows (> 1: a miss), the worst output.

    Example
    -------
    >>> from phasm.bindings.spec import Scalar
    >>> spec = Spec.from_declarations("m.f", {"x": Scalar()}, {"y": Scalar()})
    >>> tolerance_ratio(Tolerance(rel=0.01), spec, np.array([[1.0], [2.0]]), np.array([[1.005], [2.04]])).round(3).tolist()
    [0.5, 2.0]
    """
    out = np.zeros(len(Y_true))
    for name, (rel, mabs) in tolerance.variable_errors(spec, Y_true, Y_pred).items():
        r_lim, a_lim = tolerance.limits(name)
        ratio = np.full(len(Y_true), np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            if r_lim is not None:
                ratio = np.minimum(ratio, np.where(rel == 0, 0.0, rel / r_lim))
            if a_lim is not None:
                ratio = np.minimum(ratio, np.where(mabs == 0, 0.0, mabs / a_lim))
        out = np.maximum(out, ratio)
    return out


def acquisition(art: Any, gate: Any, tolerance: Tolerance, spec: Spec, X_pool: np.ndarray, U_pool: np.ndarray,
                X_rows: np.ndarray, Y_rows: np.ndarray, U_rows: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Candidate scores (tolerance units, no domain cut-off) and the gate's trusted mask on the pool.

    ``*_rows``: held-out stored rows (model inputs, true outputs, unit-cube points) that show where the
    model is wrong.
    """
    _, score = gate.predict_scores(X_pool, art)
    trusted = np.isfinite(score) & (score <= gate.threshold_)
    members = art.predict_members(X_pool)
    if members is not None:
        mean = members.mean(axis=0)
        spread = tolerance_ratio(tolerance, spec, mean.astype(np.float64), (mean + members.std(axis=0, ddof=1)).astype(np.float64))
    elif art.has_std:  # a native predictive std (a Gaussian process): declared, every backend has the method
        mean = art.predict(X_pool).astype(np.float64)
        std = art.backend.predict_std(art.x_norm.transform(X_pool)) * art.y_norm.scale
        spread = tolerance_ratio(tolerance, spec, mean, mean + std)
    else:
        spread = np.zeros(len(X_pool))
    err = np.nan_to_num(tolerance_ratio(tolerance, spec, Y_rows, art.predict(X_rows).astype(np.float64)), posinf=1e6)
    near = np.empty((len(U_pool), min(k, len(U_rows))), np.int64)
    for start in range(0, len(U_pool), 1024):
        D = ((U_pool[start : start + 1024, None, :] - U_rows[None, :, :]) ** 2).sum(-1)
        near[start : start + 1024] = np.argpartition(D, near.shape[1] - 1, axis=1)[:, : near.shape[1]]
    resid = err[near].mean(axis=1)
    acq = np.sqrt(np.nan_to_num(spread, posinf=1e6) ** 2 + resid**2)
    return np.where(trusted, acq, 2.0 * acq + 1e-9), trusted


def select(scores: np.ndarray, pool: np.ndarray, existing: np.ndarray, batch: int, explore: float = 0.2) -> np.ndarray:
    """Indices into ``pool`` (unit-cube points) of the next batch: high scores, spread out.

    ``existing``: unit-cube points already in the design.  ``scores``: ``inf`` for points the gate
    rejects outright (they rank first).

    Example
    -------
    >>> pool = np.linspace(0, 1, 101)[:, None]; s = np.exp(-((pool[:, 0] - 0.8) / 0.05) ** 2)
    >>> picks = select(s, pool, np.array([[0.0], [1.0]]), 4, explore=0.0)
    >>> bool(np.all(np.abs(pool[picks, 0] - 0.8) < 0.15))
    True
    """
    n, d = pool.shape
    batch = min(batch, n)
    s = np.asarray(scores, np.float64).copy()
    finite = np.isfinite(s)
    top = s[finite].max() if finite.any() else 1.0
    s[~finite] = 2.0 * max(top, 1e-12)  # rejected by the domain check: more urgent than any finite score
    s = np.maximum(s, 0.0)
    radius = 0.5 * (1.0 / (len(existing) + batch)) ** (1.0 / d)

    def nearest(A: np.ndarray, B: np.ndarray) -> np.ndarray:
        if not len(B):
            return np.full(len(A), np.inf)
        out = np.full(len(A), np.inf)
        for start in range(0, len(B), 2048):
            D = ((A[:, None, :] - B[None, start : start + 2048, :]) ** 2).sum(-1)
            out = np.minimum(out, D.min(axis=1))
        return np.sqrt(out)

    dmin = nearest(pool, existing)
    chosen: list[int] = []
    n_explore = int(round(explore * batch))
    for k in range(batch):
        if k < batch - n_explore:
            gain = s * (1.0 - np.exp(-((dmin / radius) ** 2)))
        else:
            gain = dmin.copy()  # exploration: the emptiest place
        gain[chosen] = -np.inf
        j = int(np.argmax(gain))
        chosen.append(j)
        dmin = np.minimum(dmin, np.sqrt(((pool - pool[j]) ** 2).sum(-1)))
    return np.asarray(chosen, np.int64)


def train_round(job: SampleJob, tolerance: Tolerance, client: Any, params: dict[str, Any], seed: int) -> tuple[Any, Any, Any]:
    """Train on the store and certify a gate; an ensemble trains its members on the cluster."""
    from phasm.gate.calibrate import train_calibrated
    from phasm.store.reader import CaptureStore

    params = dict(params) if "backend" in params else {**DEFAULT_TRAIN, **params}
    backend = params.pop("backend")
    if backend == "ensemble" and client is not None:
        params.setdefault("client", client)
    return train_calibrated(CaptureStore(job.store), job.spec, tolerance, backend=backend, seed=seed, **params)


def adaptive_rounds(job: SampleJob, run: SampleRun, client: Any, *, rounds: int, batch: int, tolerance: Tolerance | None,
                    seed: int = 0, train_params: dict[str, Any] | None = None, batch_rows: int | None = None,
                    progress: bool = True, pool_size: int | None = None, explore: float = 0.2,
                    on_round: Any = None) -> tuple[list[RoundReport], Any, int]:
    """Run ``rounds`` adaptive rounds after the design; returns the reports, the last model and rows written.

    Rounds already recorded in the run file count: a resumed run continues where it stopped.
    ``on_round(report, model, gate)`` is called after each training (e.g. to save or test each model).
    """
    from phasm.sampling.execute import execute

    if rounds < 1 or batch < 1:
        raise SampleError(f"adaptive: expected rounds >= 1 and a batch >= 1, got rounds={rounds} batch={batch}")
    if job.spec is None:
        raise SampleError(f"adaptive: no row of {job.name} succeeded, so there is nothing to train on")
    tolerance = tolerance if tolerance is not None else Tolerance(rel=0.01, max_miss_rate=0.01)
    params = dict(train_params or {})
    space = job.space
    pool_n = pool_size or max(4096, 32 * batch)
    reports: list[RoundReport] = []
    written = 0
    done_rounds = sum(1 for b in run.batches if b["kind"] == "adaptive")
    art = None
    for r in range(done_rounds, rounds + 1):
        t0 = time.perf_counter()
        art, result, gate = train_round(job, tolerance, client, params, seed)
        train_s = time.perf_counter() - t0
        # Candidates: a Sobol pool of its own (another seed), spread uniformly over the space.
        U = unit_design(space.dim, pool_n, "sobol", seed=seed + 7919 * (r + 1))
        X = model_inputs(job, job.spec, space.from_unit(U))
        prog = read_progress(job.store)
        X_rows, Y_rows, U_rows = _held_out_rows(job, run, seed)
        score, trusted = acquisition(art, gate, tolerance, job.spec, X, U, X_rows, Y_rows, U_rows)
        rep = gate.report_
        report = RoundReport(
            round=r, calls=len(prog.done_set) + len(prog.failed), rows=result.n_train + result.n_val,
            fallback_rate=float(1.0 - trusted.mean()), certified=bool(rep.certified),
            miss_rate_bound=float(rep.miss_rate_bound), expected_fallback_rate=float(rep.expected_fallback_rate),
            validation={k: {m: float(v[m]) for m in ("rel_p50", "rel_p99", "rmse") if m in v} for k, v in result.metrics.items()},
            train_seconds=train_s)
        reports.append(report)
        if on_round is not None:
            on_round(report, art, gate)
        if progress:
            from rich.console import Console

            Console(stderr=True).print(report.describe())
        if r == rounds:
            break
        picks = select(score, U, space.to_unit(run.points), batch, explore)
        rows = run.add_points(space.from_unit(U[picks]), {"kind": "adaptive", "round": r + 1, "after": report.to_json()})
        run.save(job.store)
        w, _ = execute(job, run, list(rows), client, batch_rows=batch_rows, progress=progress, label=f"round {r + 1}")
        written += w
        report.added = len(rows)
    return reports, art, written


def _held_out_rows(job: SampleJob, run: SampleRun, seed: int, calibration_fraction: float = 0.25,
                   limit: int = 50_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model inputs, true outputs and unit-cube points of the stored design rows the model did not train on
    (the calibration split of :func:`phasm.gate.calibrate.train_calibrated`, at most ``limit``): their errors
    are honest, a training row's is not."""
    from phasm.gate.base import finite_rows
    from phasm.gate.calibrate import split_calibration
    from phasm.sampling.runfile import design_index
    from phasm.store.reader import CaptureStore

    X, Y = CaptureStore(job.store).matrices(dtype=np.float64)
    idx = design_index(job.store)
    keep = finite_rows(X) & finite_rows(Y)
    X, Y, idx = X[keep], Y[keep], idx[keep]
    cal = split_calibration(len(X), calibration_fraction, seed) & (idx >= 0) & (idx < len(run.points))
    rows = np.flatnonzero(cal)
    if len(rows) > limit:
        rows = np.sort(np.random.default_rng(seed).choice(rows, limit, replace=False))
    return X[rows], Y[rows], job.space.to_unit(run.points[idx[rows]])
