"""One error family: every error phasm raises on purpose derives from :class:`PhasmError`.

Each keeps the builtin base callers already rely on (``ValueError`` for bad input or a bad
file, ``RuntimeError`` for a state problem), so ``except ValueError`` keeps working, while
``except phasm.PhasmError`` catches exactly phasm's own errors and lets bugs through.

>>> from phasm.errors import PhasmError, SpecError
>>> issubclass(SpecError, PhasmError) and issubclass(SpecError, ValueError)
True
"""

from __future__ import annotations

__all__ = [
    "ArtefactError", "BackendError", "BackendUnavailable", "ExportError", "GateError", "GateNotFitted",
    "ModeError", "ModelNotLoaded", "NotDescribable", "OpticError", "PhasmError", "ReportError", "SampleError", "SpecError", "StoreDamaged",
    "StoreError", "TargetError",
]


class PhasmError(Exception):
    """Base of every error phasm raises on purpose (not of bugs)."""


class SpecError(PhasmError, ValueError):
    """A value or a file does not match the spec it is checked against."""


class OpticError(PhasmError, ValueError):
    """A value cannot be read from, or written to, the place an optic names."""


class StoreError(PhasmError, ValueError):
    """A file is not a readable phasm capture store, or cannot be written as one."""


class StoreDamaged(StoreError):
    """A store file is truncated or altered; ``recoverable`` of its ``committed`` rows verify (``phasm repair``)."""

    def __init__(self, message: str, *, path: object = None, recoverable: int = 0, committed: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.recoverable = recoverable
        self.committed = committed


class ArtefactError(PhasmError, ValueError):
    """A model folder is missing, malformed, corrupted, or for another spec."""


class BackendError(PhasmError, RuntimeError):
    """A backend cannot be loaded, trained or run."""


class BackendUnavailable(BackendError):
    """The backend exists but its library is not installed."""


class NotDescribable(BackendError):
    """A trained network is not one whose weights phasm can rebuild elsewhere (ONNX, native code)."""


class GateError(PhasmError, ValueError):
    """A trust gate cannot be built, calibrated or loaded as asked."""


class GateNotFitted(PhasmError, RuntimeError):
    """A trust gate was used before it was calibrated (``fit``) or loaded."""


class ExportError(PhasmError, ValueError):
    """A model (or its gate) cannot be exported as native source code as asked."""


class ModeError(PhasmError, ValueError):
    """A call mode name (argument, attribute or environment variable) is not one phasm knows."""


class ModelNotLoaded(PhasmError, RuntimeError):
    """Model mode was asked for but no model is attached."""


class TargetError(PhasmError, ValueError):
    """The function to inspect, or its example, cannot be found or built."""


class SampleError(PhasmError, ValueError):
    """A design of experiments (its input space, method or run record) cannot be built or resumed as asked."""


class BatchingError(PhasmError, RuntimeError):
    """Transparent batching cannot do as asked: a bad ``max_batch``, or a deferred value used while its own batch is computed."""


class ReportError(PhasmError, ValueError):
    """A report target (model folder, store, profile or bench output) cannot be recognised or read."""
