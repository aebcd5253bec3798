"""Backend registry: plugins found through ``importlib.metadata`` entry points, loaded lazily.

Third-party packages register a backend under the entry-point group
``phasm.backends`` (``name = "package.module:BackendClass"``).  Nothing is
imported until a backend is asked for, and asking for one whose library is
missing names the pip extra that brings it.

Example
-------
>>> from phasm.backends import get_backend
>>> get_backend("ridge").name
'ridge'
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from typing import Any

from phasm.backends.base import Backend, BackendError
from phasm.errors import BackendUnavailable

ENTRY_POINT_GROUP = "phasm.backends"

# In-tree backends, so a source checkout without installed metadata still works.
_BUILTIN = {
    "ridge": "phasm.backends.ridge:RidgeBackend",
    "torch": "phasm.backends.torch_mlp:TorchBackend",
    "ensemble": "phasm.backends.ensemble:EnsembleBackend",
    "gp": "phasm.backends.gp:GPBackend",
    "torch-sets": "phasm.backends.torch_sets:TorchSetsBackend",
    "torch-ragged-export": "phasm.backends.torch_ragged_export:TorchRaggedExportBackend",
    "onnx": "phasm.backends.onnx_backend:OnnxBackend",
}


@dataclass(frozen=True)
class BackendInfo:
    name: str
    target: str
    available: bool
    missing: tuple[str, ...]
    extra: str | None
    error: str = ""


def register_builtin(name: str, target: str) -> None:
    """Register an in-tree backend (``module:Class``); entry points take precedence."""
    _BUILTIN[name] = target
    _targets.cache_clear()


@lru_cache(maxsize=1)
def _targets() -> dict[str, str]:
    targets = dict(_BUILTIN)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        targets[ep.name] = ep.value
    return targets


def backend_names() -> list[str]:
    return sorted(_targets())


def _load_class(name: str) -> type[Backend]:
    targets = _targets()
    if name not in targets:
        raise BackendError(f"unknown backend {name!r}; registered backends: {', '.join(sorted(targets))}")
    module_name, _, attr = targets[name].partition(":")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, attr)
    except Exception as exc:  # a broken plugin must not break phasm
        raise BackendError(f"backend {name!r} ({targets[name]}) failed to load: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"backend {name!r} ({targets[name]}) is not a phasm.backends.Backend subclass")
    return cls


def get_backend(name: str) -> type[Backend]:
    """The backend class registered as ``name``; raises if its library is missing."""
    cls = _load_class(name)
    missing = cls.missing_requirements()
    if missing:
        hint = f"pip install 'phasm[{cls.extra}]'" if cls.extra else f"pip install {' '.join(missing)}"
        raise BackendUnavailable(
            f"backend {name!r} needs {', '.join(missing)}, which is not installed; install it with: {hint}"
        )
    return cls


def make_backend(name: str, **params: Any) -> Backend:
    """Instantiate backend ``name`` with ``params`` (constructor stores them, nothing trains)."""
    return get_backend(name)(**params)


def list_backends() -> list[BackendInfo]:
    """Every registered backend with whether it can run here and which extra it needs."""
    out = []
    for name, target in sorted(_targets().items()):
        try:
            cls = _load_class(name)
        except BackendError as exc:
            out.append(BackendInfo(name, target, False, (), None, str(exc)))
            continue
        missing = tuple(cls.missing_requirements())
        out.append(BackendInfo(name, target, not missing, missing, cls.extra))
    return out
