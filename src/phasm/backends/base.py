"""The backend contract: an estimator that builds, trains, saves, loads and runs a model.

Backends follow scikit-learn's shape: the constructor only stores parameters,
``fit`` learns (learned state ends in ``_``), ``predict`` maps a float32 matrix
``(n, n_in)`` to ``(n, n_out)``.  Data arrive already standardised by the
train layer; a backend never sees the user's objects, only matrices.

Weights are saved in non-executable formats (safetensors, ``.npz`` without
pickle, ONNX); :meth:`Backend.save` returns the files it wrote so the artefact
can checksum them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Protocol

import numpy as np

from phasm.bindings.layout import InputLayout
from phasm.errors import BackendError

__all__ = ["Backend", "BackendError", "FitHistory", "TrainingData"]


class TrainingData(Protocol):
    """What a backend trains on: standardised float32 matrices, possibly streamed.

    ``train_batches`` yields shuffled mini-batches of the training split (one
    pass = one epoch); ``validation`` returns the held-out split.
    ``train_arrays`` materialises the whole training split for backends that
    need it in memory (closed-form solvers, scikit-learn).  ``layout`` is the
    input layout of the rows (:mod:`phasm.bindings.layout`): flat matrices, or
    variable-length sets encoded for set models.
    """

    layout: InputLayout[Any]
    n_in: int
    n_out: int
    n_train: int
    n_val: int

    def train_batches(self, batch_size: int, *, seed: int, shuffle: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...

    def train_arrays(self) -> tuple[np.ndarray, np.ndarray]: ...

    def validation(self) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class FitHistory:
    """Loss curves (standardised units) and timing, filled by ``fit``."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epochs: int = 0
    best_epoch: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    notes: dict[str, Any] = field(default_factory=dict)


class Backend:
    """Base class of backend estimators.

    Subclasses set ``name`` (the registry key), ``requires`` (importable
    modules it needs) and ``extra`` (the pip extra that brings them), and
    implement ``fit``, ``predict``, ``save`` and ``load``.

    Capabilities are declared as class flags, never guessed from which
    methods exist: callers (the trainer, the artefact, the gates) read them.

    Example
    -------
    >>> from phasm.backends import get_backend
    >>> get_backend("ensemble").has_members, get_backend("ridge").has_members
    (True, False)
    """

    name: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None
    supports_physics: ClassVar[bool] = False  # fit() honours physics= (a residual loss; see backends/physics.py)

    #: ``predict_members`` returns every member's answer ``(members, n, n_out)`` (ensembles).
    has_members: ClassVar[bool] = False
    #: ``predict_std`` returns a native predictive standard deviation (Gaussian processes).
    has_std: ClassVar[bool] = False
    #: ``fit`` takes ragged training data and ``predict`` takes RaggedInputs (set models).
    accepts_ragged: ClassVar[bool] = False
    #: answers are samples of a random function, not one value per input (generative models).
    stochastic: ClassVar[bool] = False
    #: ``predict`` reads a C-contiguous float32 ``(n, n_in)`` matrix where it lies (no copy, no conversion),
    #: and ``predict_into`` writes the answers into the caller's float32 ``(n, n_out)`` buffer without an
    #: intermediate array; so does the function ``fold_normalisation`` returns, called as ``f(X, out)``.
    zero_copy: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        self.params = params

    # -- capability -------------------------------------------------------

    @classmethod
    def missing_requirements(cls) -> list[str]:
        """Modules this backend needs that are not importable here (without importing them)."""
        return [m for m in cls.requires if importlib.util.find_spec(m) is None]

    @classmethod
    def library_version(cls) -> str:
        """Version of the ML library behind the backend, recorded in artefacts."""
        return ""

    def get_params(self) -> dict[str, Any]:
        return dict(self.params)

    # -- learning and inference --------------------------------------------

    def fit(self, data: TrainingData, *, verbose: bool = False) -> FitHistory:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_into(self, X: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``predict(X)`` written into ``out`` (C-contiguous float32 ``(n, n_out)``), which is returned.

        The default computes ``predict(X)`` and copies it; ``zero_copy`` backends write into ``out`` directly.
        """
        out[...] = self.predict(X)
        return out

    def predict_members(self, X: np.ndarray) -> np.ndarray | None:
        """Per-member predictions ``(members, n, n_out)`` for ensembles (``has_members``); ``None`` otherwise."""
        return None

    def predict_std(self, X: np.ndarray) -> np.ndarray:
        """Predictive standard deviation ``(n, n_out)`` in standardised units (``has_std`` backends)."""
        raise BackendError(f"backend {self.name!r} has no native predictive std (has_std is False)")

    def fold_normalisation(
        self, x_mean: np.ndarray, x_scale: np.ndarray, y_mean: np.ndarray, y_scale: np.ndarray
    ) -> Any:
        """Optionally, a function raw ``X`` -> raw ``Y`` with the standardisation folded into the model.

        Backends whose first and last maps are affine can absorb
        ``(x - x_mean) / x_scale`` and ``y * y_scale + y_mean`` into their
        weights, which saves the separate array passes (most of the cost at
        batch 1).  ``None`` (the default): not supported, the caller
        standardises.  The function is called as ``f(X)``, or as ``f(X, out)``
        with a float32 ``(n, n_out)`` buffer to write into (returned); a
        ``zero_copy`` backend writes there without an intermediate array.
        """
        return None

    # -- persistence --------------------------------------------------------

    def save(self, directory: Path) -> list[str]:  # pragma: no cover - abstract
        """Write weights into ``directory``; return the file names written."""
        raise NotImplementedError

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], state: dict[str, Any]) -> "Backend":  # pragma: no cover
        """Rebuild from ``directory`` with the saved ``params`` and JSON ``state``."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """Small JSON-able learned state stored in ``phasm.json`` (shapes, layer sizes ...)."""
        return {}
