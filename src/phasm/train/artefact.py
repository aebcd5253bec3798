"""Model artefacts: a folder with ``phasm.json`` and non-executable weights.

``phasm.json`` records the format version, the spec and its hash, the backend
(name, library version, parameters, small learned state), the normalisation,
metrics, training settings, creation time, the SHA-256 of every weights file,
extra sections that higher layers add (the trust gate's calibration), and one
manifest digest over all of it (:mod:`phasm.train.model_folder`).  Loading checks
all of it: an edited ``phasm.json``, a missing, altered or extra file, or a model
whose spec differs from the function's is refused with one clear error
(:class:`~phasm.errors.ArtefactError`).  The backend reads only the verified
bytes; nothing is ever unpickled, imported or run.

Example
-------
>>> art = ModelArtefact.load("models/price", expect_spec=price.spec)  # doctest: +SKIP
>>> art.predict(X)                                                     # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from phasm.backends.base import Backend
from phasm.backends.registry import get_backend
from phasm.bindings.layout import InputLayout, input_layout
from phasm.bindings.spec import Spec
from phasm.errors import ArtefactError, BackendError, BackendUnavailable, SpecError
from phasm.train.columns import InputColumns
from phasm.train.data import Standardiser
from phasm.train.transforms import ColumnTransform, Transform, transforms_from_json, transforms_to_json
from phasm.train.model_folder import (FORMAT, FORMAT_VERSION, METADATA_FILE, VerifiedFolder, manifest_digest,
                                      read_folder, sha256_file, write_folder)

__all__ = ["FORMAT", "FORMAT_VERSION", "METADATA_FILE", "ArtefactError", "ModelArtefact", "manifest_digest",
           "sha256_file", "spec_from_metadata"]

KNOWN_FIELDS = frozenset({"format", "format_version", "phasm_version", "created", "spec", "spec_hash", "backend",
                          "normalisation", "transforms", "input_columns", "files", "metrics", "training", "manifest"})


class ModelArtefact:
    """A trained model for one spec: normalisation + backend estimator + metadata.

    ``predict`` takes raw (user-unit) model inputs, as the spec's input layout
    packs them (``layout``: a float32 matrix ``(n, n_in_features)``, or
    :class:`~phasm.bindings.ragged.RaggedInputs` for variable-length inputs), and
    returns raw output rows ``(n, n_out_features)``.  ``has_members`` / ``has_std``:
    the backend's declared capabilities, for gates.

    ``transforms``: each variable's :class:`~phasm.train.transforms.Transform` (a log, ...), applied
    before the standardisation and inverted after the backend answers; ``columns``: the input columns
    the backend reads (:class:`~phasm.train.columns.InputColumns`: constants and duplicates in the
    captures are not read; a call whose constant differs from its captured value gets NaN answers).
    Both are recorded in ``phasm.json`` as data.
    """

    def __init__(
        self,
        spec: Spec,
        backend: Backend,
        x_norm: Standardiser,
        y_norm: Standardiser,
        *,
        metrics: dict[str, Any] | None = None,
        training: dict[str, Any] | None = None,
        sections: dict[str, Any] | None = None,
        created: str | None = None,
        transforms: dict[str, Transform] | None = None,
        columns: InputColumns | None = None,
    ) -> None:
        self.spec = spec
        self.backend = backend
        self.transforms = dict(transforms or {})
        self.columns = columns if columns is not None else InputColumns.all(spec.n_in_features)
        self.layout: InputLayout[Any] = input_layout(spec)
        # The normalisation carries the per-column transforms (the artefact's record is the one source).
        x_tf = ColumnTransform.for_layout(spec.inputs, self.transforms)
        y_tf = ColumnTransform.for_variables(spec.outputs, self.transforms)
        self.x_norm = Standardiser(x_norm.mean, x_norm.scale, None if x_tf.identity else x_tf)
        self.y_norm = Standardiser(y_norm.mean, y_norm.scale, None if y_tf.identity else y_tf)
        self._x_pre = None if x_tf.identity else x_tf.forward_block
        # Nothing between the caller's rows and the backend but the standardisation: the fast path.
        self._plain = x_tf.identity and y_tf.identity and self.columns.identity
        self.metrics = metrics or {}
        self.training = training or {}
        self.sections = sections or {}  # e.g. {"gate": {...}} written by higher layers
        self.created = created or time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.path: Path | None = None
        self.digest: str | None = None  # manifest digest of the folder it was saved to or loaded from
        self.has_members = backend.has_members
        self.has_std = backend.has_std
        self._inference: Any = None  # the engine answering predict (phasm.train.inference), chosen on first use

    # -- inference ----------------------------------------------------------

    def backend_inputs(self, X: Any) -> Any:
        """Raw inputs -> the rows the backend takes: transformed, standardised, the columns it reads."""
        Z = self.layout.standardise(X, self.x_norm.mean, self.x_norm.scale, self._x_pre)
        return Z if self.columns.identity else self.columns.select(Z)

    def predict(self, X: Any, out: np.ndarray | None = None) -> np.ndarray:
        """Raw inputs (``n`` rows of the input layout) -> raw outputs ``(n, n_out)`` (float32).

        ``out``: a C-contiguous float32 ``(n, n_out)`` array to write the answers into (and return); an
        engine that can (a ``zero_copy`` backend with the standardisation folded in) writes there with no
        intermediate, others copy their answers into it.
        """
        plan = self._inference
        if plan is None:
            plan = self._choose_inference()
        if out is None:
            Y: np.ndarray = plan.predict(X)
            return Y
        if plan.predict_into is not None:
            return plan.predict_into(X, out)  # type: ignore[no-any-return]
        out[...] = plan.predict(X)
        return out

    @property
    def plain(self) -> bool:
        """No transform and every input column read: the backend's folded function is raw -> raw."""
        return bool(self._plain)

    def model_rows(self, X: Any) -> np.ndarray:
        """Raw inputs -> the rows a folded engine takes: transformed, the columns the model reads (not standardised)."""
        x_tf = self.x_norm.transforms
        Xt = np.asarray(X, np.float32) if x_tf is None else x_tf.forward(X)
        return np.ascontiguousarray(self.columns.select(Xt), dtype=np.float32)

    def caller_outputs(self, X: Any, out: np.ndarray) -> np.ndarray:
        """A folded engine's answers (``(n, n_out)``, or ``(k, n, n_out)`` for members) -> the caller's scale,
        NaN for calls outside the captured constants and duplicates."""
        y_tf = self.y_norm.transforms
        if y_tf is not None:
            out = np.stack([y_tf.inverse(m) for m in out]) if out.ndim == 3 else y_tf.inverse(out)
        if not self.columns.identity:
            inside = self.columns.inside(X)
            if not inside.all():
                out = np.array(out, np.float32, copy=True)
                out[..., ~inside, :] = np.nan
        return out

    def outside_to_nan(self, X: Any, out: np.ndarray) -> np.ndarray:
        """NaN answers for calls whose dropped constant or duplicate inputs differ from the captures."""
        if not self.columns.identity:
            inside = self.columns.inside(X)
            if not inside.all():
                out = np.array(out, np.float32, copy=True)
                out[~inside] = np.nan
        return out

    def _choose_inference(self, engine: str | None = None, measure_again: bool = False) -> Any:
        from phasm.train.inference import choose_inference

        plan = self._inference = choose_inference(self, engine, measure_again=measure_again)
        return plan

    @property
    def inference(self) -> Any:
        """The engine answering :meth:`predict` and why (:class:`~phasm.train.inference.InferenceChoice`)."""
        plan = self._inference if self._inference is not None else self._choose_inference()
        return plan.choice

    def use_engine(self, engine: str = "auto") -> Any:
        """Choose the inference engine again: ``"auto"`` (measure now), ``"torch"`` (the backend's own), ``"onnx"``.

        Returns the :class:`~phasm.train.inference.InferenceChoice`.
        """
        return self._choose_inference(engine, measure_again=True).choice

    def predict_members(self, X: Any) -> np.ndarray | None:
        """Per-member raw predictions ``(members, n, n_out)`` for ensemble backends, else ``None``."""
        if not self.has_members:
            return None
        plan = self._inference if self._inference is not None else self._choose_inference()
        if plan.members is not None:
            out: np.ndarray = plan.members(X)
            return out
        Z = self.backend.predict_members(self.backend_inputs(X))
        if Z is None:
            return None
        out = self.y_norm.inverse(Z)
        if not self.columns.identity:
            out[:, ~self.columns.inside(X)] = np.nan
        return out

    def predict_std(self, X: Any) -> np.ndarray:
        """The backend's native predictive standard deviation ``(n, n_out)`` in raw units (``has_std`` backends).

        Through a transformed output (a log, ...) the std is carried to raw units by the slope of the
        inverse transform at the predicted value (first order).
        """
        Z = self.backend_inputs(X)
        std: np.ndarray = np.asarray(self.backend.predict_std(Z), np.float32) * self.y_norm.scale
        y_tf = self.y_norm.transforms
        if y_tf is not None:
            std = std * y_tf.derivative_inverse(self.y_norm.unstandardise(self.backend.predict(Z)))
        return self.outside_to_nan(X, std)

    def describe_inputs(self) -> dict[str, Any]:
        """Transforms (other than ``standardise``) and dropped input columns, by name, for reports."""
        from phasm.train.columns import column_names

        return {"transforms": {n: t.describe() for n, t in self.transforms.items() if t.kind != "standardise"},
                **({} if self.columns.identity else self.columns.describe(column_names(self.spec.inputs)))}

    # -- persistence ----------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model folder atomically (a fresh folder renamed into place), sealed by its manifest digest.

        An existing folder is replaced only if it holds a phasm model and nothing else.
        """
        self.path, self.digest = write_folder(path, self.backend.save, self._metadata)
        if self._inference is not None:  # loads of this folder in this process keep the engine (same answers)
            from phasm.train.inference import remember_choice

            remember_choice(self.digest, self._inference.choice)
        return self.path

    def _metadata(self) -> dict[str, Any]:
        """``phasm.json`` without ``files`` and ``manifest`` (after the backend saved: its state may name its files)."""
        from phasm import __version__

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "phasm_version": __version__,
            "created": self.created,
            "spec": self.spec.to_json(),
            "spec_hash": self.spec.hash,
            "backend": {
                "name": self.backend.name,
                "version": self.backend.library_version(),
                "params": self.backend.get_params(),
                "state": self.backend.state(),
            },
            "normalisation": {"x": self.x_norm.to_json(), "y": self.y_norm.to_json()},
            "transforms": transforms_to_json(self.transforms),
            **({} if self.columns.identity else {"input_columns": self.columns.to_json()}),
            "metrics": self.metrics,
            "training": self.training,
            **{k: v for k, v in self.sections.items() if k not in KNOWN_FIELDS},
        }

    @classmethod
    def read_metadata(cls, path: str | os.PathLike[str], *, expect_digest: str | None = None) -> dict[str, Any]:
        """The verified ``phasm.json`` of a model folder (manifest digest and every file checked)."""
        return _checked_fields(read_folder(path, expect_digest=expect_digest))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, expect_spec: Spec | None = None,
             expect_digest: str | None = None) -> "ModelArtefact":
        """Load and verify a model folder.

        ``expect_spec``: the spec of the function the model is for; a different spec is refused with the
        differing variables named.  ``expect_digest``: the folder's manifest digest (``phasm info`` prints
        it), to refuse any other model, even a consistent one.
        """
        folder = read_folder(path, expect_digest=expect_digest)
        meta = _checked_fields(folder)
        path = folder.path
        spec = spec_from_metadata(meta, path)
        if expect_spec is not None:
            try:
                expect_spec.check_compatible(spec, f"model {path}")
            except SpecError as exc:
                raise ArtefactError(str(exc)) from None
        try:
            x_norm = Standardiser.from_json(meta["normalisation"]["x"], spec.n_in_features, "input")
            y_norm = Standardiser.from_json(meta["normalisation"]["y"], spec.n_out_features, "output")
        except (KeyError, ValueError, TypeError, OverflowError) as exc:
            raise ArtefactError(f"{path}: bad normalisation record: {type(exc).__name__}: "
                                f"{' '.join(str(exc).split())}") from exc
        try:
            transforms = transforms_from_json(meta.get("transforms"), spec, "transforms")
            columns = (InputColumns.from_json(meta["input_columns"], spec.n_in_features, "input_columns")
                       if "input_columns" in meta else None)
        except SpecError as exc:
            raise ArtefactError(f"{path}: {exc}") from None
        if columns is not None and any(v.ragged for v in spec.inputs):
            raise ArtefactError(f"{path}: input_columns: a model with variable-length inputs reads every column")
        state = meta["backend"].get("state", {})
        n_used = spec.n_in_features if columns is None else len(columns.kept)
        for key, width in (("n_in", n_used), ("n_out", spec.n_out_features)):
            if key in state and state[key] != width:
                raise ArtefactError(f"{path}: the backend state says {key}={state[key]!r}; the spec has {width}")
        backend = _load_backend(folder, meta["backend"])
        sections = {k: v for k, v in meta.items() if k not in KNOWN_FIELDS}
        art = cls(spec, backend, x_norm, y_norm, metrics=meta.get("metrics"), training=meta.get("training"),
                  sections=sections, created=meta.get("created"), transforms=transforms, columns=columns)
        art.path = path
        art.digest = folder.digest
        art._check_runs()
        return art

    def _check_runs(self) -> None:
        """Predict two rows (at the input mean) and check the output's shape: a model that loads also runs."""
        if any(v.ragged for v in self.spec.inputs):
            return  # set models: their backend checks its own architecture against the weights
        X = np.repeat(self.x_norm.inverse(np.zeros((1, self.spec.n_in_features), np.float32)).astype(np.float64), 2, axis=0)
        from phasm.train.inference import engine_setting

        engine_setting()  # a bad $PHASM_ENGINE is said as such, not as a model that does not run
        try:
            out = self.predict(X)
        except (BackendError, ValueError, TypeError, IndexError, RuntimeError, FloatingPointError) as exc:
            raise ArtefactError(f"{self.path}: the loaded model does not run: {type(exc).__name__}: "
                                f"{' '.join(str(exc).split())}") from exc
        expected = (2, self.spec.n_out_features)
        if not isinstance(out, np.ndarray) or out.shape != expected:
            raise ArtefactError(f"{self.path}: the loaded model returns {getattr(out, 'shape', type(out).__name__)} "
                                f"for 2 rows; the spec needs {expected}")

    def __repr__(self) -> str:
        return f"ModelArtefact({self.spec.function}, backend={self.backend.name}, path={self.path})"


def spec_from_metadata(meta: dict[str, Any], path: str | os.PathLike[str]) -> Spec:
    """The spec recorded in a model's verified metadata, checked against its recorded hash."""
    try:  # parsing a record from the file: any shape error in it is the file's, said as such
        spec = Spec.from_json(meta["spec"])
    except (SpecError, KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
        raise ArtefactError(f"{path}: bad spec record: {type(exc).__name__}: {' '.join(str(exc).split())}") from exc
    if spec.hash != meta["spec_hash"]:
        raise ArtefactError(f"{path}: spec hash {meta['spec_hash']} does not match its own spec ({spec.hash})")
    return spec


def _checked_fields(folder: VerifiedFolder) -> dict[str, Any]:
    """The metadata with each field phasm reads present and of the right JSON type."""
    meta = folder.meta
    types: dict[str, type | tuple[type, ...]] = {
        "spec": dict, "spec_hash": str, "backend": dict, "normalisation": dict, "files": dict,
        "metrics": dict, "training": dict, "created": str, "phasm_version": str, "transforms": dict,
        "input_columns": dict}
    for key, typ in types.items():
        if key not in meta and key in ("metrics", "training", "created", "phasm_version", "transforms", "input_columns"):
            continue
        if key not in meta:
            raise ArtefactError(f"{folder.path}: {METADATA_FILE} has no field {key!r}")
        if not isinstance(meta[key], typ):
            raise ArtefactError(f"{folder.path}: field {key!r} of {METADATA_FILE} is a {type(meta[key]).__name__}")
    b = meta["backend"]
    if not isinstance(b.get("name"), str) or not isinstance(b.get("params", {}), dict) \
            or not isinstance(b.get("state", {}), dict):
        raise ArtefactError(f"{folder.path}: the backend record needs a name, a params mapping and a state mapping")
    return meta


def _load_backend(folder: VerifiedFolder, record: dict[str, Any]) -> Backend:
    """The backend, loaded from a private copy of the verified weights (never from the folder itself)."""
    try:
        backend_cls = get_backend(record["name"])
    except BackendUnavailable:
        raise
    except BackendError as exc:
        raise ArtefactError(f"{folder.path}: {exc}") from exc
    loader: Callable[[Path, dict[str, Any], dict[str, Any]], Backend] = backend_cls.load
    with tempfile.TemporaryDirectory(prefix="phasm-model-") as tmp:
        for name, data in folder.files.items():
            (Path(tmp) / name).write_bytes(data)
        try:
            return loader(Path(tmp), dict(record.get("params", {})), dict(record.get("state", {})))
        except BackendUnavailable:
            raise
        except (BackendError, KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError,
                RuntimeError, OSError) as exc:
            # A backend's load parses the record and weights from the file: any of these from it means the file
            # is bad. Say which model in one line; the cause stays chained (``phasm --debug`` shows it).
            message = " ".join(str(exc).replace(tmp, str(folder.path)).split())
            kind = "" if isinstance(exc, BackendError) else f"{type(exc).__name__}: "
            raise ArtefactError(f"{folder.path}: backend {record['name']!r} cannot load this model: {kind}{message}") from exc
