"""phasm: replace a slow scientific function with a trained surrogate, behind a calibrated trust gate.

>>> import phasm
>>> @phasm.surrogate(store="captures/square.h5")   # doctest: +SKIP
... def square(x: float) -> float:
...     return x * x

Core phasm needs numpy and h5py only; ML libraries load lazily through backends.
"""

__version__ = "0.1.0"

from phasm.bindings.declare import attr, each, fields, glob, item, setter
from phasm.bindings.optics import Arg, Return
from phasm.bindings.ragged import RaggedArray
from phasm.bindings.spec import Array, Scalar, Spec, Variable
from phasm.errors import (
    ArtefactError, BackendError, BackendUnavailable, BatchingError, GateError, ModeError, ModelNotLoaded, OpticError,
    PhasmError, SampleError, SpecError, StoreError, TargetError,
)
from phasm.gate.base import FiniteGate, Gate
from phasm.gate.conformal import CalibrationReport, ConformalGate
from phasm.gate.distribution import DistributionGate, DistributionTolerance
from phasm.gate.domain import DomainGate
from phasm.gate.range import RangeGate
from phasm.gate.tolerance import Tolerance
from phasm.surrogate.batching import batching
from phasm.surrogate.deferred import Deferred, resolve
from phasm.surrogate.mode import Mode
from phasm.surrogate.stats import SurrogateStats
from phasm.surrogate.wrapper import Surrogate, surrogate

__all__ = [
    "Arg", "Array", "FiniteGate", "Gate", "Mode", "Return", "Scalar", "Spec",
    "Surrogate", "SurrogateStats", "Tolerance", "Variable", "__version__", "surrogate",
    # transparent batching of per-call sites
    "Deferred", "batching", "resolve",
    # one error family
    "ArtefactError", "BackendError", "BackendUnavailable", "BatchingError", "GateError", "ModeError", "ModelNotLoaded", "OpticError",
    "PhasmError", "SampleError", "SpecError", "StoreError", "TargetError",
    # optics for objects, globals, collections (bindings)
    "RaggedArray", "attr", "each", "fields", "glob", "item", "setter",
    # trust gate
    "CalibrationReport", "ConformalGate", "DomainGate", "RangeGate",
    # stochastic functions: generative surrogates gated on distributions
    "DistributionGate", "DistributionTolerance",
    # designs of experiments on Dask, a search over model settings (loaded on first use)
    "sample", "tune",
]


def __getattr__(name: str):  # lazy: `import phasm` loads no sampling code (nor Dask, nor scipy)
    if name == "sample":
        from phasm.sampling.run import sample

        return sample
    if name == "tune":
        from phasm.surrogate.tuning import tune

        return tune
    raise AttributeError(f"module 'phasm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"sample", "tune"})
