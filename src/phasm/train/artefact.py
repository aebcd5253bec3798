"""Model artefacts: a folder with ``phasm.json`` and non-executable weights.

``phasm.json`` records the format version, the spec and its hash, the backend
(name, library version, parameters, small learned state), the normalisation,
metrics, training settings, creation time, the SHA-256 of every weights file,
and extra sections that higher layers add (the trust gate's calibration).
Loading checks all of it: a model whose spec differs from the function's, or
whose weights were truncated or altered, is refused with a clear error.
Nothing is ever unpickled.

Example
-------
>>> art = ModelArtefact.load("models/price", expect_spec=price.spec)  # doctest: +SKIP
>>> art.predict(X)                                                     # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from phasm.backends.base import Backend, BackendError
from phasm.backends.registry import get_backend
from phasm.bindings.layout import InputLayout, input_layout
from phasm.bindings.spec import Spec, SpecError
from phasm.errors import ArtefactError
from phasm.train.data import Standardiser

FORMAT = "phasm-model"
FORMAT_VERSION = 1
METADATA_FILE = "phasm.json"


_UNSET = object()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ModelArtefact:
    """A trained model for one spec: normalisation + backend estimator + metadata.

    ``predict`` takes raw (user-unit) model inputs, as the spec's input layout
    packs them (``layout``: a float32 matrix ``(n, n_in_features)``, or
    :class:`~phasm.bindings.ragged.RaggedInputs` for variable-length inputs), and
    returns raw output rows ``(n, n_out_features)``.  ``has_members`` / ``has_std``:
    the backend's declared capabilities, for gates.
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
    ) -> None:
        self.spec = spec
        self.backend = backend
        self.x_norm = x_norm
        self.y_norm = y_norm
        self.metrics = metrics or {}
        self.training = training or {}
        self.sections = sections or {}  # e.g. {"gate": {...}} written by higher layers
        self.created = created or time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.path: Path | None = None
        self.layout: InputLayout[Any] = input_layout(spec)
        self.has_members = backend.has_members
        self.has_std = backend.has_std
        # The backend's raw->raw function with the standardisation folded in, if any (flat inputs only).
        self._folded: Any = None if self.layout.ragged else _UNSET

    # -- inference ----------------------------------------------------------

    def predict(self, X: Any) -> np.ndarray:
        """Raw inputs (``n`` rows of the input layout) -> raw outputs ``(n, n_out)`` (float32)."""
        folded = self._folded
        if folded is _UNSET:
            folded = self._folded = self.backend.fold_normalisation(
                self.x_norm.mean, self.x_norm.scale, self.y_norm.mean, self.y_norm.scale)
        if folded is not None:
            return folded(X)  # type: ignore[no-any-return]
        return self.y_norm.inverse(self.backend.predict(self.layout.standardise(X, self.x_norm.mean, self.x_norm.scale)))

    def predict_members(self, X: Any) -> np.ndarray | None:
        """Per-member raw predictions ``(members, n, n_out)`` for ensemble backends, else ``None``."""
        if not self.has_members:
            return None
        Z = self.backend.predict_members(self.layout.standardise(X, self.x_norm.mean, self.x_norm.scale))
        return None if Z is None else self.y_norm.inverse(Z)

    def predict_std(self, X: Any) -> np.ndarray:
        """The backend's native predictive standard deviation ``(n, n_out)`` in raw units (``has_std`` backends)."""
        Z = self.layout.standardise(X, self.x_norm.mean, self.x_norm.scale)
        std: np.ndarray = np.asarray(self.backend.predict_std(Z), np.float32) * self.y_norm.scale
        return std

    # -- persistence ----------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the artefact folder atomically (a temp folder renamed into place)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            files = self.backend.save(tmp)
            from phasm import __version__

            meta = {
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
                "files": {name: sha256_file(tmp / name) for name in files},
                "metrics": self.metrics,
                "training": self.training,
                **{k: v for k, v in self.sections.items()},
            }
            (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=1, default=_json_default))
            if path.exists():
                if not (path / METADATA_FILE).exists() and any(path.iterdir()):
                    raise ArtefactError(f"{path} exists and is not a phasm model folder; refusing to overwrite")
                shutil.rmtree(path)
            tmp.rename(path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.path = path
        return path

    @classmethod
    def read_metadata(cls, path: str | os.PathLike[str]) -> dict[str, Any]:
        """The validated ``phasm.json`` of a model folder."""
        path = Path(path)
        meta_path = path / METADATA_FILE
        if not meta_path.is_file():
            raise ArtefactError(f"{path}: not a phasm model folder (no {METADATA_FILE})")
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArtefactError(f"{meta_path}: corrupted metadata ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ArtefactError(f"{meta_path}: not a phasm model (format field is {meta.get('format') if isinstance(meta, dict) else None!r})")
        if int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise ArtefactError(f"{meta_path}: format version {meta['format_version']} is newer than this phasm supports")
        for key in ("spec", "spec_hash", "backend", "normalisation", "files"):
            if key not in meta:
                raise ArtefactError(f"{meta_path}: missing field {key!r}")
        return meta

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, expect_spec: Spec | None = None) -> "ModelArtefact":
        """Load and validate a model folder.

        ``expect_spec``: the spec of the function the model is for; a
        different spec is refused with the differing variables named.
        """
        path = Path(path)
        meta = cls.read_metadata(path)
        try:
            spec = Spec.from_json(meta["spec"])
        except SpecError as exc:
            raise ArtefactError(f"{path}: {exc}") from None
        if spec.hash != meta["spec_hash"]:
            raise ArtefactError(f"{path}: spec hash {meta['spec_hash']} does not match its own spec ({spec.hash}); file edited or corrupted")
        if expect_spec is not None:
            try:
                expect_spec.check_compatible(spec, f"model {path}")
            except SpecError as exc:
                raise ArtefactError(str(exc)) from None
        for name, digest in meta["files"].items():
            fpath = path / name
            if Path(name).name != name:
                raise ArtefactError(f"{path}: weights file name {name!r} is not a plain file name")
            if not fpath.is_file():
                raise ArtefactError(f"{path}: weights file {name} is missing")
            actual = sha256_file(fpath)
            if actual != digest:
                raise ArtefactError(
                    f"{path}: weights file {name} is corrupted or truncated (sha256 {actual[:12]}..., expected {digest[:12]}...)"
                )
        b = meta["backend"]
        try:
            backend_cls = get_backend(b["name"])
            backend = backend_cls.load(path, dict(b.get("params", {})), dict(b.get("state", {})))
        except BackendError:
            raise
        except Exception as exc:
            raise ArtefactError(f"{path}: backend {b.get('name')!r} could not load the weights: {exc}") from None
        try:
            x_norm = Standardiser.from_json(meta["normalisation"]["x"], spec.n_in_features, "input")
            y_norm = Standardiser.from_json(meta["normalisation"]["y"], spec.n_out_features, "output")
        except (KeyError, ValueError, TypeError) as exc:
            raise ArtefactError(f"{path}: bad normalisation record: {exc}") from None
        known = {"format", "format_version", "phasm_version", "created", "spec", "spec_hash", "backend",
                 "normalisation", "files", "metrics", "training"}
        sections = {k: v for k, v in meta.items() if k not in known}
        art = cls(spec, backend, x_norm, y_norm, metrics=meta.get("metrics"), training=meta.get("training"),
                  sections=sections, created=meta.get("created"))
        art.path = path
        return art

    def __repr__(self) -> str:
        return f"ModelArtefact({self.spec.function}, backend={self.backend.name}, path={self.path})"


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")
