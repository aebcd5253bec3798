"""Backends: plugins that build, train, save, load and run models (found via entry points)."""

from phasm.backends.base import Backend, BackendError, FitHistory, TrainingData
from phasm.backends.registry import (
    BackendInfo,
    BackendUnavailable,
    backend_names,
    get_backend,
    list_backends,
    make_backend,
    register_builtin,
)

__all__ = [
    "Backend", "BackendError", "BackendInfo", "BackendUnavailable", "FitHistory", "TrainingData",
    "backend_names", "get_backend", "list_backends", "make_backend", "register_builtin",
]
