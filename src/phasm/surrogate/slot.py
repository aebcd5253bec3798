"""The model slot: a surrogate's (model, gate) pair, and training, retraining, saving and loading it.

The model and its gate live in one tuple, ``pair``, swapped by one reference
assignment: a call reads it once, so it never pairs a new model with an old
gate, and a background retrain never shows a half-built model.

Without a tolerance, training fits the default gate, a :class:`~phasm.gate.range.RangeGate`
(inputs outside the captured range fall back; no accuracy bound is certified);
with one, a certified :class:`~phasm.gate.conformal.ConformalGate`.  A gate given
by the user is kept as it is.

Example
-------
>>> slot = ModelSlot("m.f", backend="ridge")
>>> slot.model is None, slot.gate.describe()
(True, 'finite inputs and outputs')
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from phasm.bindings.spec import Spec
from phasm.errors import BackendError, ModelNotLoaded, StoreError
from phasm.gate.base import FiniteGate, Gate
from phasm.gate.certify import CalibrationReport
from phasm.gate.registry import gate_from_json
from phasm.gate.distribution import DistributionTolerance
from phasm.gate.tolerance import Tolerance

if TYPE_CHECKING:
    from phasm.store.reader import CaptureStore
    from phasm.train.artefact import ModelArtefact
    from phasm.train.package import TrainResult

__all__ = ["AnyTolerance", "ModelSlot"]

#: a deterministic function's error tolerance, or a stochastic one's bounds on distributions
AnyTolerance = Tolerance | DistributionTolerance | None

DEFAULT_TRAINING: dict[str, Any] = dict(val_fraction=0.2, seed=0, verbose=False, calibration_fraction=0.25,
                                        confidence=0.95)


class ModelSlot:
    """The (model, gate) pair of one surrogate and the training that fills it.

    ``user_gate``: the gate was given by the user (``gate=``): training and loading keep it.
    """

    def __init__(self, name: str, *, backend: str = "auto", gate: Gate | None = None, stochastic: bool = False) -> None:
        self.name = name
        self.backend = backend
        #: a stochastic function: generative models only, drawing from ``sample_seed``'s stream
        self.stochastic = stochastic
        self.sample_seed: int | np.random.SeedSequence | None = None
        self.user_gate = gate is not None
        self.pair: tuple[ModelArtefact | None, Gate] = (None, gate if gate is not None else FiniteGate())
        self.retrain_error: BaseException | None = None
        self.retrains = 0
        self.last_training: tuple[str | None, dict[str, Any]] = (None, {})
        self._retrain_lock = threading.Lock()
        self._retrain_thread: threading.Thread | None = None

    @property
    def model(self) -> ModelArtefact | None:
        return self.pair[0]

    @property
    def gate(self) -> Gate:
        return self.pair[1]

    @property
    def calibration(self) -> CalibrationReport | None:
        """The gate's calibration report (``None``: no accuracy bound certified)."""
        return self.pair[1].report_

    def set_model(self, art: ModelArtefact | None) -> None:
        self.pair = (art, self.pair[1])

    def set_gate(self, gate: Gate) -> None:
        self.pair = (self.pair[0], gate)

    def reseed(self, seed: int | np.random.SeedSequence | None) -> None:
        """Restart the stream a generative model's samples come from (``None``: fresh entropy)."""
        self.sample_seed = seed
        model = self.pair[0]
        if model is not None and getattr(model.backend, "stochastic", False):
            model.backend.reseed(seed)  # type: ignore[attr-defined]

    def require_model(self) -> ModelArtefact:
        model = self.pair[0]
        if model is None:
            raise ModelNotLoaded(f"{self.name}: mode 'model' needs a trained model; call .train() or .load(path) first")
        return model

    def attach(self, art: ModelArtefact) -> None:
        """Swap in ``art`` and its gate (the one stored with it, unless the user gave one): one assignment.

        A stochastic function's model must be generative; it draws from the slot's stream (:meth:`reseed`).
        """
        if self.stochastic:
            if not getattr(art.backend, "stochastic", False):
                raise BackendError(f"{self.name}: a stochastic function needs a generative model ('flow' or 'vae'); "
                                   f"this one's backend is {art.backend.name!r}")
            art.backend.reseed(self.sample_seed)  # type: ignore[attr-defined]
        gate = self.pair[1] if self.user_gate else gate_from_json(art.sections.get("gate"))
        self.pair = (art, gate)

    # -- training -------------------------------------------------------------------

    def fit(self, source: CaptureStore | None, spec: Spec, tolerance: AnyTolerance, backend: str | None,
            kw: dict[str, Any]) -> tuple[ModelArtefact, TrainResult]:
        """Train a model (and its gate) on ``source`` for ``spec``; nothing is attached.

        ``source`` is ``None`` when training from a ``physics=`` residual alone (nothing captured).
        """
        from phasm.gate.calibrate import train_gated

        kw = dict(kw)
        cal_fraction, confidence = kw.pop("calibration_fraction"), kw.pop("confidence")
        if self.stochastic:
            from phasm.gate.distribution import train_generator_gated

            tol = tolerance if isinstance(tolerance, DistributionTolerance) and not self.user_gate else None
            return train_generator_gated(source, spec, tol, backend=backend or self.backend,
                                         default_gate=not self.user_gate, calibration_fraction=cal_fraction, **kw)
        reg_tol = tolerance if isinstance(tolerance, Tolerance) else None
        return train_gated(source, spec, reg_tol if not self.user_gate else None, backend=backend or self.backend,
                           default_gate=not self.user_gate, calibration_fraction=cal_fraction,
                           confidence=confidence, **kw)

    def train(self, source: CaptureStore | None, spec: Spec, tolerance: AnyTolerance, backend: str | None,
              kw: dict[str, Any]) -> TrainResult:
        self.last_training = (backend, dict(kw))  # what retrain() repeats
        art, result = self.fit(source, spec, tolerance, backend, kw)
        self.attach(art)
        return result

    def retrain(self, source: Callable[[], CaptureStore], spec: Spec, tolerance: AnyTolerance,
                backend: str | None, params: dict[str, Any], *, background: bool, process: bool,
                store_path: Path | None) -> Any:
        """Train a new model and gate and swap them in; see :meth:`phasm.Surrogate.retrain`.

        ``source`` gives the store (flushed by the caller before a background retrain starts).
        """
        last_backend, last_kw = self.last_training
        kw = {**DEFAULT_TRAINING, **last_kw, **params}
        backend = backend or last_backend
        if not background:
            art, result = self.fit(source(), spec, tolerance, backend, kw)
            self.attach(art)
            self.retrains += 1
            return result
        with self._retrain_lock:
            if self._retrain_thread is not None and self._retrain_thread.is_alive():
                return self._retrain_thread
            thread = threading.Thread(target=self._retrain_worker, args=(source, spec, tolerance, backend, kw, process,
                                                                         store_path),
                                      daemon=True, name=f"phasm-retrain-{self.name}")
            self._retrain_thread = thread
            thread.start()
        return thread

    def _retrain_worker(self, source: Callable[[], CaptureStore], spec: Spec, tolerance: AnyTolerance,
                        backend: str | None, kw: dict[str, Any], in_process: bool, store_path: Path | None) -> None:
        try:
            if in_process:
                from phasm.gate.calibrate import train_in_subprocess
                from phasm.gate.distribution import train_stochastic_child
                from phasm.train.artefact import ModelArtefact

                if store_path is None:
                    raise StoreError(f"{self.name}: retraining in a process needs a store")
                tol = tolerance if not self.user_gate else None
                kw = {k: v for k, v in kw.items() if k != "verbose"}
                path = train_in_subprocess(store_path, spec, tol, backend or self.backend, kw,
                                           default_gate=not self.user_gate,
                                           child=train_stochastic_child if self.stochastic else None)
                try:
                    art = ModelArtefact.load(path, expect_spec=spec)
                finally:
                    shutil.rmtree(path.parent, ignore_errors=True)
            else:
                art, _ = self.fit(source(), spec, tolerance, backend, kw)
            self.attach(art)
            self.retrains += 1
            self.retrain_error = None
        except BaseException as exc:  # reported, never raised into a caller's thread
            self.retrain_error = exc

    # -- persistence ------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the model, with its gate unless the user gave one, as a model folder."""
        art, gate = self.pair
        if art is None:
            raise ModelNotLoaded(f"{self.name}: no model to save; train or load one first")
        if not self.user_gate and type(gate) is not FiniteGate:
            art.sections["gate"] = gate.to_json()
        return art.save(path)

    def load(self, path: str | os.PathLike[str], expect: Spec) -> None:
        """Load a model folder for ``expect`` (refused, naming the variable, when its spec differs) and attach it."""
        from phasm.train.artefact import ModelArtefact

        self.attach(ModelArtefact.load(path, expect_spec=expect))

    def load_exported(self, path: str | os.PathLike[str], spec: Spec, norm: dict[str, Any]) -> None:
        from phasm.train.exported import load_exported

        self.attach(load_exported(path, spec, **norm))
