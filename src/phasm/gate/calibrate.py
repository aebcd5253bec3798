"""Train a model and calibrate its trust gate on captures the model never saw.

The captured rows are split (seeded, row by row: :func:`~phasm.gate.stream.calibration_mask`)
into a training part, which :func:`phasm.train.fit_model` splits again for
validation, and a calibration part, on which a
:class:`~phasm.gate.conformal.ConformalGate` is certified.  From a capture
store, both parts are read in batches: the model trains as
:func:`~phasm.train.fit_model` does (streamed when the store is larger than
``max_memory_bytes``), and the gate holds a bounded sample of training rows
and ``batch_rows`` calibration rows at a time, so a store larger than memory
calibrates.  The gate is stored in the artefact (``art.sections["gate"]``), so
saving the model saves its calibration.

Example
-------
>>> import numpy as np, phasm
>>> from phasm.gate.calibrate import train_calibrated
>>> spec = phasm.Spec.from_declarations("m.f", {"x": phasm.Scalar()}, {"y": phasm.Scalar()})
>>> X = np.random.default_rng(0).uniform(1, 2, (3000, 1)); Y = X ** 2
>>> art, result, gate = train_calibrated((X, Y), spec, phasm.Tolerance(rel=1e-3, max_miss_rate=0.05),
...                                      backend="ensemble", member="ridge", k=3, member_params={"degree": 2})
>>> gate.report_.certified
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from phasm.bindings.spec import Spec
from phasm.errors import GateError
from phasm.gate.conformal import ConformalGate
from phasm.gate.domain import DomainGate
from phasm.gate.range import RangeGate, range_gate_for_store
from phasm.gate.stream import ArrayRows, StoreRows, calibration_mask
from phasm.gate.tolerance import Tolerance


def split_calibration(n: int, calibration_fraction: float, seed: int) -> np.ndarray:
    """Seeded boolean mask of calibration rows (independent of the training split's seed stream)."""
    return calibration_mask(n, calibration_fraction, seed)


def train_calibrated(
    source: Any,
    spec: Spec | None,
    tolerance: Tolerance,
    *,
    backend: Any = "auto",
    calibration_fraction: float = 0.25,
    val_fraction: float = 0.2,
    confidence: float = 0.95,
    score: str = "auto",
    regions: str = "auto",
    region_levels: tuple[float, ...] | None = None,
    domain: DomainGate | None = None,
    batch_rows: int = 65536,
    max_tune_rows: int = 20000,
    max_memory_bytes: int = 2 << 30,
    seed: int = 0,
    verbose: bool = False,
    **params: Any,
) -> tuple[Any, Any, ConformalGate]:
    """Train on part of ``source`` and certify a :class:`ConformalGate` on the rest.

    ``source`` is a :class:`~phasm.store.CaptureStore` (read in batches of ``batch_rows``; the model
    trains in memory when the store fits in ``max_memory_bytes``, streamed otherwise) or raw
    ``(X, Y)`` matrices (then ``spec`` is required).  ``regions`` / ``region_levels``: the regions
    certified separately (see :class:`ConformalGate`).  The gate holds at most
    ``domain.max_reference + max_tune_rows`` training rows and ``batch_rows`` calibration rows at once.  Returns ``(artefact, train_result, gate)``;
    the gate's JSON is also in ``artefact.sections["gate"]``.
    """
    from phasm.store.reader import CaptureStore
    from phasm.train.fit import fit_model

    if not isinstance(tolerance, Tolerance):
        raise TypeError(f"train_calibrated: tolerance must be a phasm.Tolerance, got {type(tolerance).__name__}")
    declared = spec if spec is not None else (source.spec if isinstance(source, CaptureStore) else None)
    if declared is not None:
        tolerance.check(declared)
    if declared is not None and any(v.ragged for v in declared.inputs):
        return _train_calibrated_ragged(source, declared, tolerance, backend=backend,
                                         calibration_fraction=calibration_fraction, val_fraction=val_fraction,
                                         confidence=confidence, seed=seed, verbose=verbose, **params)
    spec = declared
    if spec is None:
        raise GateError("train_calibrated: a spec is required when training from arrays")
    gate = ConformalGate(tolerance, confidence=confidence, score=score, domain=domain, seed=seed, regions=regions,
                         region_levels=region_levels, batch_rows=batch_rows, max_tune_rows=max_tune_rows)
    if isinstance(source, CaptureStore):
        cal_rows: StoreRows | ArrayRows = StoreRows(source, (calibration_fraction, seed, True), batch_rows)
        train_rows: StoreRows | ArrayRows = StoreRows(source, (calibration_fraction, seed, False), batch_rows)
        n_cal, n_train = cal_rows.n_rows, train_rows.n_rows
        train_source: Any = source
        fit_kw: dict[str, Any] = {"rows": ~calibration_mask(len(source), calibration_fraction, seed),
                                  "max_memory_bytes": max_memory_bytes}
    else:
        X, Y = (np.asarray(a, np.float64) for a in source)
        if X.ndim != 2 or X.shape[1] != spec.n_in_features or Y.shape != (len(X), spec.n_out_features):
            raise GateError(f"train_calibrated: X must be (n, {spec.n_in_features}) and Y (n, {spec.n_out_features}) "
                            f"for {spec.function}; got {X.shape} and {Y.shape}")
        cal = calibration_mask(len(X), calibration_fraction, seed)
        keep = np.isfinite(X).all(1) & np.isfinite(Y).all(1)
        cal_rows, train_rows = ArrayRows(X, Y, cal), ArrayRows(X, Y, ~cal)  # non-finite rows are skipped
        n_cal, n_train = cal_rows.n_rows, train_rows.n_rows
        train_source, fit_kw = (X[~cal & keep], Y[~cal & keep]), {}
    if n_cal < 10 or n_train < 2:
        raise GateError(f"train_calibrated: {n_cal + n_train} rows are too few to train and calibrate "
                        f"({n_train} train, {n_cal} calibration)")
    params.setdefault("selection_tolerance", tolerance)  # backend "auto" scores its candidates against it
    art, result = fit_model(train_source, spec, backend=backend, val_fraction=val_fraction, seed=seed,
                            verbose=verbose, **fit_kw, **params)
    # Candidate thresholds come from training rows' scores (independent of the calibration rows),
    # so every calibration row certifies.
    gate.fit_rows(cal_rows, train_rows, art, spec=spec)
    art.sections["gate"] = gate.to_json()
    assert gate.report_ is not None
    art.training["calibration_rows"] = int(gate.report_.n_calibration)
    return art, result, gate


def _train_calibrated_ragged(source: Any, spec: Spec, tolerance: Tolerance, *, backend: Any, calibration_fraction: float,
                             val_fraction: float, confidence: float, seed: int, verbose: bool,
                             **params: Any) -> tuple[Any, Any, Any]:
    """:func:`train_calibrated` for variable-length inputs: a set model, and a gate certified on
    per-call summaries of the held-out calls (see :mod:`phasm.gate.ragged`)."""
    from phasm.gate.ragged import RaggedConformalGate
    from phasm.store.reader import CaptureStore
    from phasm.train.ragged import fit_ragged_model, ragged_matrices

    if isinstance(source, CaptureStore):
        X, Y = ragged_matrices(spec, *source.read())
    else:
        X, Y = source
    cal = split_calibration(len(X), calibration_fraction, seed)
    if cal.sum() < 10 or (~cal).sum() < 2:
        raise GateError(f"train_calibrated: {len(X)} rows are too few to train and calibrate "
                         f"({int((~cal).sum())} train, {int(cal.sum())} calibration)")
    train_rows, cal_rows = np.flatnonzero(~cal), np.flatnonzero(cal)
    X_train = X.take(train_rows)
    art, result = fit_ragged_model((X_train, Y[train_rows]), spec, backend=backend, val_fraction=val_fraction,
                                   seed=seed, verbose=verbose, **params)
    gate = RaggedConformalGate(tolerance, confidence=confidence, seed=seed).fit(
        X.take(cal_rows), Y[cal_rows], art, X_train=X_train, spec=spec)
    art.sections["gate"] = gate.to_json()
    art.training["calibration_rows"] = int(cal.sum())
    return art, result, gate


def train_gated(source: Any, spec: Spec | None, tolerance: Tolerance | None, *, backend: Any = "auto",
                default_gate: bool = True, calibration_fraction: float = 0.25, confidence: float = 0.95,
                **kw: Any) -> tuple[Any, Any]:
    """Train a model for ``spec`` on a capture store with the gate ``auto`` mode will use, stored in the
    artefact (``art.sections["gate"]``): with a ``tolerance``, a certified :class:`ConformalGate`
    (:func:`train_calibrated`); without, the captured-range :class:`~phasm.gate.range.RangeGate`
    (``default_gate=False``: none).  ``spec``: default, the store's.  Returns ``(artefact, train_result)``.
    """
    from phasm.bindings.layout import input_layout
    from phasm.train.fit import fit_model

    if tolerance is not None:
        art, result, _ = train_calibrated(source, spec, tolerance, backend=backend,
                                          calibration_fraction=calibration_fraction, confidence=confidence, **kw)
        return art, result
    art, result = fit_model(source, spec, backend=backend, **kw)
    if default_gate and source is None:  # trained from physics alone: trust the declared domain, no wider
        from phasm.train.physics import domain_bounds

        lower, upper = domain_bounds(art.spec, kw.get("domain") or {})
        art.sections["gate"] = RangeGate(margin=0.0).fit(np.stack([lower, upper])).to_json()
    elif default_gate:
        art.sections["gate"] = range_gate_for_store(source, input_layout(art.spec), seed=kw.get("seed", 0)).to_json()
    return art, result


def _train_child(store: str, spec_json: dict[str, Any], tolerance_json: dict[str, Any] | None, backend: Any,
                 kw: dict[str, Any], out: str, default_gate: bool = True) -> None:
    """Child-process body of :func:`train_in_subprocess`: train (and calibrate), save the folder."""
    try:
        from phasm.store.reader import CaptureStore

        spec = Spec.from_json(spec_json)
        tol = Tolerance.from_json(tolerance_json) if tolerance_json is not None else None
        art, _ = train_gated(CaptureStore(store), spec, tol, backend=backend, default_gate=default_gate, **kw)
        art.save(out)
    except BaseException as exc:
        import traceback

        Path(out).parent.joinpath("error.txt").write_text(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        raise SystemExit(1) from None


def train_in_subprocess(store: Any, spec: Spec, tolerance: Any, backend: Any, kw: dict[str, Any],
                        timeout: float | None = None, *, default_gate: bool = True,
                        child: Callable[..., None] | None = None) -> Path:
    """Train (and, with a tolerance, calibrate) in a fresh ``spawn`` process; returns the saved model folder.

    The caller's threads keep the GIL to themselves while the child trains;
    the folder lies in a new temporary directory the caller removes.  ``child``: a module-level
    function ``(store, spec_json, tolerance_json, backend, kw, out, default_gate)`` that trains and saves the
    folder at ``out`` (default: a regression model, calibrated with a tolerance); on failure it
    writes ``error.txt`` beside ``out`` and exits non-zero.
    """
    import multiprocessing
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="phasm-retrain-"))
    out = tmp / "model"
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=child or _train_child, daemon=True, name="phasm-retrain",
                       args=(str(store), spec.to_json(), tolerance.to_json() if tolerance is not None else None,
                             backend, dict(kw), str(out), default_gate))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.terminate()
        raise TimeoutError(f"retraining process still running after {timeout} s; terminated")
    if proc.exitcode != 0 or not out.is_dir():
        err = tmp / "error.txt"
        detail = err.read_text().splitlines()[0] if err.exists() else f"exit code {proc.exitcode}"
        raise RuntimeError(f"retraining process failed: {detail}")
    return out
