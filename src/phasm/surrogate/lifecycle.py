"""Training, retraining with hot swap, saving and loading of a surrogate's model
(a mixin of :class:`~phasm.surrogate.Surrogate`).

The model and its gate live in one tuple swapped by a single assignment, so a
call never pairs a new model with an old gate, and a background retrain never
shows a half-loaded model.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from phasm.bindings.spec import Spec
from phasm.errors import ModelNotLoaded
from phasm.gate.base import FiniteGate, gate_from_json


class ModelLifecycle:
    """Store access, train/retrain, save/load (mixed into ``Surrogate``)."""

    def flush(self) -> None:
        """Write buffered captured rows to the store now."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the capture store (a later capture reopens it)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._summary and self.store_path is not None:
            self.save_summary()

    def capture_store(self) -> Any:
        """The capture store as a :class:`~phasm.store.CaptureStore` (buffered rows flushed first)."""
        from phasm.store.reader import CaptureStore

        if self.store_path is None:
            raise ValueError(f"{self.name}: no store configured; pass store= to phasm.surrogate")
        self.flush()
        return CaptureStore(self.store_path)

    def train(self, backend: str | None = None, *, store: str | os.PathLike[str] | None = None,
              val_fraction: float = 0.2, seed: int = 0, verbose: bool = False,
              calibration_fraction: float = 0.25, confidence: float = 0.95, **params: Any) -> Any:
        """Train a model on the captured rows and attach it; returns a :class:`~phasm.train.TrainResult`.

        ``backend`` defaults to the surrogate's backend (``"torch"``); extra
        keyword arguments go to the backend (e.g. ``epochs=200``).  With a
        ``tolerance``, ``calibration_fraction`` of the rows are held out to
        certify a :class:`~phasm.gate.ConformalGate` at ``confidence``
        (see :func:`phasm.gate.train_calibrated`); its report is ``fn.calibration``.
        """
        kw = dict(val_fraction=val_fraction, seed=seed, verbose=verbose, calibration_fraction=calibration_fraction,
                  confidence=confidence, **params)
        self._last_training = (backend, dict(kw))  # what retrain() repeats
        art, result = self._fit(backend, store, kw)
        self._attach(art)
        return result

    def _fit(self, backend: str | None, store: Any, kw: dict[str, Any], flush: bool = True) -> tuple[Any, Any]:
        from phasm.store.reader import CaptureStore
        from phasm.train.fit import fit_model
        from phasm.train.physics import physics_source

        if store is not None:
            source = CaptureStore(store)
        elif flush:
            source = self.capture_store() if kw.get("physics") is None else physics_source(self)  # None: physics only
        elif self.store_path is None:
            raise ValueError(f"{self.name}: no store configured; pass store= to phasm.surrogate")
        else:
            source = CaptureStore(self.store_path)  # background thread: the caller flushed
        if self.spec is None:
            self._set_spec(self._resolved_from(source.spec))  # type: ignore[arg-type]
        cal_fraction, confidence = kw.pop("calibration_fraction"), kw.pop("confidence")
        if self.tolerance is not None and not self._user_gate:
            from phasm.gate.calibrate import train_calibrated

            art, result, _ = train_calibrated(source, self.spec, self.tolerance, backend=backend or self.backend,
                                              calibration_fraction=cal_fraction, confidence=confidence, **kw)
            return art, result
        return fit_model(source, self.spec, backend=backend or self.backend, **kw)

    def retrain(self, backend: str | None = None, *, background: bool = True, process: bool | None = None,
                **params: Any) -> Any:
        """Train a new model (and gate) on everything captured so far and hot-swap it in.

        With ``background=True`` (default) training runs in a daemon thread and
        this returns it at once (``.join()`` to wait); calls keep using the old
        model until the new model and its gate are fully built, then switch with
        one reference assignment.  A retrain already running is returned
        instead of starting another.  Errors are kept in ``fn.retrain_error``.
        With ``process=True`` (default: ``fn.retrain_in_process``) training runs in a
        spawned process, so it does not share the GIL with the callers; the
        thread only waits, loads the saved model and swaps it in.
        Without arguments it repeats the last :meth:`train` (backend and parameters).
        Set ``fn.retrain_after_rows = N`` to retrain automatically, in
        ``auto`` mode, after ``N`` new captured rows.

        Example
        -------
        >>> fn.retrain().join()      # doctest: +SKIP
        """
        last_backend, kw = getattr(self, "_last_training", (None, {}))
        kw = {**dict(val_fraction=0.2, seed=0, verbose=False, calibration_fraction=0.25, confidence=0.95), **kw, **params}
        backend = backend or last_backend
        if not background:
            art, result = self._fit(backend, None, kw)
            self._attach(art)
            self._n_retrains += 1
            return result
        with self._retrain_lock:
            if self._retrain_thread is not None and self._retrain_thread.is_alive():
                return self._retrain_thread
            self.flush()  # the writer belongs to the calling thread; the worker only reads
            self._captured_at_train = self._n_captured
            in_process = self.retrain_in_process if process is None else bool(process)
            thread = threading.Thread(target=self._retrain_worker, args=(backend, kw, in_process), daemon=True,
                                      name=f"phasm-retrain-{self.name}")
            self._retrain_thread = thread
            thread.start()
        return thread

    def _retrain_worker(self, backend: str | None, kw: dict[str, Any], in_process: bool = False) -> None:
        try:
            if in_process:
                import shutil

                from phasm.gate.calibrate import train_in_subprocess
                from phasm.train.artefact import ModelArtefact

                if self.store_path is None or self.spec is None:
                    raise ValueError(f"{self.name}: retraining in a process needs a store and a spec")
                tol = self.tolerance if not self._user_gate else None
                kw = {k: v for k, v in kw.items() if k != "verbose"}
                path = train_in_subprocess(self.store_path, self.spec, tol, backend or self.backend, kw)
                try:
                    art = ModelArtefact.load(path, expect_spec=self.spec)
                finally:
                    shutil.rmtree(path.parent, ignore_errors=True)
            else:
                art, _ = self._fit(backend, None, kw, flush=False)
            self._attach(art)
            self._n_retrains += 1
            self.retrain_error = None
        except BaseException as exc:  # reported, never raised into a caller's thread
            self.retrain_error = exc

    def _maybe_retrain(self) -> None:
        n = self.retrain_after_rows
        if n and self.store_path is not None and self._n_captured - self._captured_at_train >= n:
            self.retrain(background=True)

    @property
    def retrains(self) -> int:
        """How many retrains have completed and been swapped in."""
        return self._n_retrains

    def _attach(self, art: Any) -> None:
        gate = self.gate if self._user_gate else gate_from_json(art.sections.get("gate"))
        self._live = (art, gate)  # the hot swap: one reference, both built
        self.calibration = getattr(gate, "report_", None)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the attached model as an artefact folder."""
        if self.model is None:
            raise ModelNotLoaded(f"{self.name}: no model to save; train or load one first")
        if not self._user_gate and type(self.gate) is not FiniteGate:
            self.model.sections["gate"] = self.gate.to_json()
        return self.model.save(path)

    def load(self, path: str | os.PathLike[str]) -> "ModelLifecycle":
        """Load a model artefact; refuses one whose spec differs from this function's."""
        from phasm.train.artefact import ModelArtefact

        expect = self.spec
        if expect is None and self._deferred is not None:  # declared optics, shapes from the model's spec
            expect = self._resolved_from(Spec.from_json(ModelArtefact.read_metadata(path)["spec"]))
        art = ModelArtefact.load(path, expect_spec=expect)
        if self.spec is None:
            self._set_spec(expect if expect is not None else art.spec)
        self._attach(art)
        return self

    def load_exported(self, path: str | os.PathLike[str], **norm: Any) -> "ModelLifecycle":
        """Attach a ``torch.export`` program (``.pt2``) trained elsewhere; widths are checked against the spec.

        The program maps ``(batch, n_in_features)`` to ``(batch, n_out_features)`` in user units unless
        ``x_mean/x_scale/y_mean/y_scale`` say otherwise (see :func:`phasm.train.exported.load_exported`).
        """
        from phasm.train.exported import load_exported

        if self.spec is None:
            raise ValueError(f"{self.name}: declare inputs/outputs (or call it once) before load_exported, "
                             "so the model's widths can be checked")
        self._attach(load_exported(path, self.spec, **norm))
        return self
