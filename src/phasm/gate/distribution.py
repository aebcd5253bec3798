"""The stochastic gate: a generative surrogate is used only if held-out tests cannot tell it from the function.

A stochastic function has no right answer per call, so there is no per-call error to bound; what a
generative surrogate can get right or wrong is the *distribution* of its answers.  The gate is
therefore decided once, on captures the model never saw (neither for fitting nor for early
stopping), and applied per call only for the domain:

1. **Acceptance** (:class:`DistributionTolerance`): on the held-out rows, a gradient-boosted
   classifier separating ``(x, simulated y)`` from ``(x, generated y)`` reaches an out-of-fold ROC
   AUC whose one-sided upper confidence bound (Hanley-McNeil standard error, ``confidence``) is at
   most ``auc``; optional bounds on every observable's Kolmogorov-Smirnov distance (``ks``), on the
   relative deviation of the observables' means (``mean_rel``: per-layer energies and shower
   shapes of layers holding >= 1% of the energy, or each scalar output), and of the resolution
   (``resolution_rel``).  A model that fails is kept but answers nothing: every call runs the
   function.
2. **Per call** (:class:`DistributionGate`): an accepted model answers a row only if its inputs are
   finite and inside the trained domain (:class:`~phasm.gate.domain.DomainGate`: the captured range
   and a distance to the training inputs); other rows run the function (and are captured).

What it guarantees: for inputs drawn like the held-out captures, the joint distribution of inputs
and generated outputs is one that this classifier, trained on ``n`` held-out rows, separates from
the function's with AUC at most ``auc`` (at the stated confidence), and the listed observables are
within their bounds.  It does not bound the error of a single answer (a draw of a random function
has none), nor differences that a classifier of that size and sample cannot see (rare tails, far
correlations), nor inputs distributed unlike the captures within the domain.

Example
-------
>>> import numpy as np
>>> from phasm.train.distributions import DistributionReport
>>> tol = DistributionTolerance(auc=0.75)
>>> tol.check(DistributionReport(auc=0.56, auc_stderr=0.01, n_rows=2000))
(True, [])
>>> tol.check(DistributionReport(auc=0.74, auc_stderr=0.02, n_rows=400))[1]
['classifier AUC 0.740 (upper 95% bound 0.773) > 0.75']
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from phasm.gate.base import Gate, finite_rows
from phasm.gate.domain import DomainGate


@dataclass(frozen=True)
class DistributionTolerance:
    """Acceptance bounds of a generative surrogate, checked on held-out captures (see the module doc)."""

    auc: float = 0.75
    ks: float | None = None
    mean_rel: float | None = None
    resolution_rel: float | None = None
    confidence: float | None = 0.95

    def __post_init__(self) -> None:
        if not 0.5 <= self.auc <= 1.0:
            raise ValueError(f"DistributionTolerance: auc must be in [0.5, 1], got {self.auc}")
        for name in ("ks", "mean_rel", "resolution_rel"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ValueError(f"DistributionTolerance: {name} must be >= 0 or None, got {value}")
        if self.confidence is not None and not 0.5 <= self.confidence < 1.0:
            raise ValueError(f"DistributionTolerance: confidence must be in [0.5, 1) or None, got {self.confidence}")

    def auc_bound(self, auc: float, stderr: float) -> float:
        """The AUC value compared with ``auc``: the upper confidence bound, or the estimate itself."""
        if self.confidence is None or not math.isfinite(stderr):
            return auc
        return auc + statistics.NormalDist().inv_cdf(self.confidence) * stderr

    def check(self, report: Any) -> tuple[bool, list[str]]:
        """``(accepted, reasons for refusal)`` for a :class:`~phasm.train.distributions.DistributionReport`."""
        reasons = []
        bound = self.auc_bound(report.auc, report.auc_stderr)
        if not bound <= self.auc:
            conf = "" if self.confidence is None else f" (upper {self.confidence:.0%} bound {bound:.3f})"
            reasons.append(f"classifier AUC {report.auc:.3f}{conf} > {self.auc}")
        if self.ks is not None and not report.max_ks <= self.ks:
            worst = max(report.observables, key=lambda k: report.observables[k]["ks"])
            reasons.append(f"KS distance of {worst} {report.max_ks:.3f} > {self.ks}")
        if self.mean_rel is not None and not report.max_mean_rel_dev <= self.mean_rel:
            reasons.append(f"an observable's mean deviates by {report.max_mean_rel_dev:.2%} > {self.mean_rel:.2%}")
        if self.resolution_rel is not None:
            dev = report.resolution_rel_dev
            if dev is None:
                reasons.append("resolution_rel is set but the report has no response (no layered output or condition)")
            elif not dev <= self.resolution_rel:
                reasons.append(f"resolution deviates by {dev:.2%} > {self.resolution_rel:.2%}")
        return not reasons, reasons

    def to_json(self) -> dict[str, Any]:
        return {"auc": self.auc, "ks": self.ks, "mean_rel": self.mean_rel, "resolution_rel": self.resolution_rel,
                "confidence": self.confidence}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "DistributionTolerance":
        return cls(float(d["auc"]), d.get("ks"), d.get("mean_rel"), d.get("resolution_rel"), d.get("confidence"))


class DistributionGate(Gate):
    """Per call: an accepted generative model answers finite in-domain rows; a refused one answers none."""

    kind = "distribution"

    def __init__(self, tolerance: DistributionTolerance | None = None, domain: DomainGate | None = None) -> None:
        self.tolerance = tolerance or DistributionTolerance()
        self.domain = domain or DomainGate()

    def fit(self, report: Any, X_train: np.ndarray, X_held: np.ndarray | None = None) -> "DistributionGate":
        """Decide acceptance from the held-out ``report``; learn the domain from raw training inputs."""
        self.accepted_, self.reasons_ = self.tolerance.check(report)
        self.auc_, self.auc_stderr_, self.n_rows_ = float(report.auc), float(report.auc_stderr), int(report.n_rows)
        self.domain.fit(X_train, X_held)
        return self

    def accept(self, X: np.ndarray, Y: np.ndarray, model: Any) -> np.ndarray:
        if not self.accepted_:
            return np.zeros(len(X), bool)
        return self.domain.accept(X, Y, model) & finite_rows(Y)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "tolerance": self.tolerance.to_json(), "accepted": self.accepted_,
                "reasons": list(self.reasons_), "auc": self.auc_, "auc_stderr": self.auc_stderr_,
                "n_rows": self.n_rows_, "domain": self.domain.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "DistributionGate":
        try:
            gate = cls(DistributionTolerance.from_json(d["tolerance"]), DomainGate.from_json(d["domain"]))
            accepted = d["accepted"]
            if not isinstance(accepted, bool):
                raise TypeError(f"accepted must be true or false, got {accepted!r}")
            gate.accepted_, gate.reasons_ = accepted, [str(r) for r in d.get("reasons", [])]
            gate.auc_, gate.auc_stderr_, gate.n_rows_ = float(d["auc"]), float(d["auc_stderr"]), int(d["n_rows"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"distribution gate: bad record: {type(exc).__name__}: {exc}") from None
        return gate

    def describe(self) -> str:
        verdict = "accepted" if self.accepted_ else "refused (" + "; ".join(self.reasons_) + "): every call runs the function"
        return (f"distribution gate: held-out classifier AUC {self.auc_:.3f} +- {self.auc_stderr_:.3f} on "
                f"{self.n_rows_} rows, bound {self.tolerance.auc}: {verdict}; per call: {self.domain.describe()}")


def train_stochastic(source: Any, spec: Any, tolerance: DistributionTolerance, *, backend: Any = "flow",
                     calibration_fraction: float = 0.25, val_fraction: float = 0.15, seed: int = 0, folds: int = 2,
                     condition: int | None = None, radial_centres: Sequence[float] | None = None,
                     verbose: bool = False, **params: Any) -> tuple[Any, Any, DistributionGate]:
    """Fit a generator on part of ``source`` and decide its :class:`DistributionGate` on the rest.

    ``source``: a capture store or raw ``(X, Y)`` (then ``spec`` is required).  The held-out
    (calibration) rows are used for nothing but the report.  Returns ``(artefact, result, gate)``;
    the gate and the report are in ``artefact.sections`` (``gate``, ``distribution``).
    """
    from phasm.gate.calibrate import split_calibration
    from phasm.train.stochastic import fit_generator, raw_rows, validate_generator

    if not isinstance(tolerance, DistributionTolerance):
        raise TypeError(f"train_stochastic: tolerance must be a phasm.DistributionTolerance, got {type(tolerance).__name__}")
    spec, X, Y = raw_rows(source, spec)
    held = split_calibration(len(X), calibration_fraction, seed)
    if held.sum() < 4 * max(2, folds) or (~held).sum() < 2:
        raise ValueError(f"train_stochastic: {len(X)} finite rows are too few to train and test a generator "
                         f"({int((~held).sum())} train, {int(held.sum())} held out)")
    art, result = fit_generator((X[~held], Y[~held]), spec, backend=backend, val_fraction=val_fraction, seed=seed,
                                validate=False, verbose=verbose, **params)
    report = validate_generator(art, X[held], Y[held], seed=seed, folds=folds, condition=condition,
                                radial_centres=radial_centres)
    result.report = report
    art.sections["distribution"]["auc_bound"] = tolerance.auc  # what phasm report checks it against
    gate = DistributionGate(tolerance).fit(report, X[~held], X[held])
    art.sections["gate"] = gate.to_json()
    art.training["held_out_rows"] = int(held.sum())
    return art, result, gate


def train_generator_gated(source: Any, spec: Any, tolerance: DistributionTolerance | None, *, backend: Any = "flow",
                          default_gate: bool = True, calibration_fraction: float = 0.25, **kw: Any) -> tuple[Any, Any]:
    """A stochastic function's generator with the gate ``auto`` mode will use (in ``art.sections["gate"]``):
    with a ``tolerance``, the :class:`DistributionGate` (:func:`train_stochastic`); without, the captured-range
    :class:`~phasm.gate.range.RangeGate` for a store (``default_gate=False``, or arrays: none).
    ``kw`` may carry ``confidence`` (a regression tolerance's; ignored: a DistributionTolerance has its own)."""
    from phasm.store.reader import CaptureStore
    from phasm.train.stochastic import fit_generator

    kw.pop("confidence", None)
    if tolerance is not None:
        art, result, _ = train_stochastic(source, spec, tolerance, backend=backend,
                                          calibration_fraction=calibration_fraction, **kw)
        return art, result
    art, result = fit_generator(source, spec, backend=backend, **kw)
    if default_gate and isinstance(source, CaptureStore):
        from phasm.bindings.layout import input_layout
        from phasm.gate.range import range_gate_for_store

        art.sections["gate"] = range_gate_for_store(source, input_layout(art.spec), seed=kw.get("seed", 0)).to_json()
    return art, result


def train_stochastic_child(store: str, spec_json: dict[str, Any], tolerance_json: dict[str, Any] | None,
                           backend: Any, kw: dict[str, Any], out: str, default_gate: bool = True) -> None:
    """Child-process body for :func:`phasm.gate.calibrate.train_in_subprocess` (``child=``): train a
    generator with its gate (:func:`train_generator_gated`) on ``store`` and save it at ``out``."""
    from pathlib import Path

    try:
        from phasm.bindings.spec import Spec
        from phasm.store.reader import CaptureStore

        tol = DistributionTolerance.from_json(tolerance_json) if tolerance_json is not None else None
        art, _ = train_generator_gated(CaptureStore(store), Spec.from_json(spec_json), tol, backend=backend,
                                       default_gate=default_gate, **kw)
        art.save(out)
    except BaseException as exc:
        import traceback

        Path(out).parent.joinpath("error.txt").write_text(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        raise SystemExit(1) from None
