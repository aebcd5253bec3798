"""Stochastic functions: a generative model answers with a fresh sample per call
(the pieces the wrapper, the model slot and the call handlers use).

``@phasm.surrogate(stochastic=True)`` declares that the function draws random numbers, so the same
inputs give different outputs.  Captures are stored as usual (one draw per row); :meth:`train`
fits a conditional generator of the outputs given the inputs (backend ``flow`` by default, or
``vae``) and, with a :class:`phasm.DistributionTolerance`, gates it on held-out distributions
(:mod:`phasm.gate.distribution`).  In ``model`` and ``auto`` mode each call (each row of a batched
call) gets a new sample:

- from the surrogate's stream, restarted by ``fn.seed(...)``
  (:meth:`~phasm.surrogate.wrapper.Surrogate.seed`; fresh entropy until then, as an unseeded
  simulation would be), or
- from the function's own random argument, when it has one: a parameter named ``rng``,
  ``random_state``, ``generator`` or ``seed``, or annotated as a ``numpy.random.Generator``.  A
  ``Generator`` passed there is drawn from (the same state gives the same answer), an ``int`` seeds
  a new one, a legacy ``RandomState`` gives a seed; ``None`` means the surrogate's stream.  That
  argument is never a model input.

Example
-------
>>> import numpy as np, phasm
>>> @phasm.surrogate(stochastic=True, mode="original")
... def walk(steps: float, rng: np.random.Generator | None = None) -> float:
...     rng = np.random.default_rng(rng)
...     return float(rng.standard_normal(int(steps)).sum())
>>> walk.random_argument
'rng'
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from phasm.gate.tolerance import Tolerance

__all__ = ["RANDOM_ARGUMENT_NAMES", "SeededSampler", "call_generator", "check_stochastic_settings", "generator_from",
           "random_argument", "regression_tolerance", "with_call_generator"]

RANDOM_ARGUMENT_NAMES = ("rng", "random_state", "generator", "seed")


def random_argument(signature: inspect.Signature) -> str | None:
    """The parameter a function takes its randomness from, if any (see the module doc)."""
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        ann = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", repr(p.annotation))
        if "Generator" in ann or "RandomState" in ann:
            return p.name
    for p in signature.parameters.values():
        if p.name in RANDOM_ARGUMENT_NAMES and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            return p.name
    return None


def generator_from(value: Any, name: str) -> np.random.Generator | None:
    """A ``Generator`` from the random argument's value; ``None`` for ``None`` (the surrogate's stream)."""
    if value is None:
        return None
    if isinstance(value, np.random.Generator):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return np.random.default_rng(int(value))
    if isinstance(value, np.random.SeedSequence):
        return np.random.default_rng(value)
    if isinstance(value, np.random.RandomState):
        return np.random.default_rng(int(value.randint(0, 2**63 - 1, dtype=np.int64)))
    raise TypeError(f"random argument {name!r}: expected a numpy.random.Generator, an int seed, a RandomState or None, "
                    f"got {type(value).__name__}")


class SeededSampler:
    """A generative model artefact drawing from one given generator: ``predict(X)`` samples ``art`` with ``rng``."""

    def __init__(self, art: Any, rng: np.random.Generator) -> None:
        self.art, self.rng = art, rng
        self._state = rng.bit_generator.state

    def rewind(self) -> None:
        """Put the generator back as it was passed, for a call the function answers whole."""
        self.rng.bit_generator.state = self._state

    def predict(self, X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        from phasm.train.stochastic import sample_model

        Y = sample_model(self.art, X, self.rng)
        if out is None:
            return Y
        out[...] = Y
        return out

    def __getattr__(self, name: str) -> Any:  # the gate may read the artefact's spec, backend, ...
        return getattr(self.art, name)


def check_stochastic_settings(name: str, stochastic: bool, tolerance: Any, shadow_fraction: float) -> None:
    """Refuse settings that do not fit the function's kind, in one line naming the setting."""
    from phasm.gate.distribution import DistributionTolerance

    if stochastic and tolerance is not None and not isinstance(tolerance, DistributionTolerance):
        raise TypeError(f"{name}: tolerance of a stochastic function must be a phasm.DistributionTolerance "
                        f"(its answers are judged on distributions), got {type(tolerance).__name__}")
    if not stochastic and isinstance(tolerance, DistributionTolerance):
        raise TypeError(f"{name}: a DistributionTolerance is for stochastic functions; "
                        f"declare phasm.surrogate(stochastic=True)")
    if stochastic and shadow_fraction:
        raise ValueError(f"{name}: shadow_fraction must be 0 for a stochastic function (a draw has no per-call "
                         f"error to measure), got {shadow_fraction}")


def regression_tolerance(tolerance: Any) -> Tolerance | None:
    """``tolerance`` if it bounds per-call errors (a :class:`~phasm.gate.tolerance.Tolerance`), else ``None``
    (a stochastic function's bounds are on distributions: shadow checks never run for one)."""
    return tolerance if isinstance(tolerance, Tolerance) else None


def call_generator(signature: inspect.Signature, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
                   ) -> np.random.Generator | None:
    """The generator a call passes in the random argument ``name`` (``None``: none, use the surrogate's stream)."""
    if name in kwargs:
        value = kwargs[name]
    else:
        params = list(signature.parameters)
        i = params.index(name)
        if i < len(args):
            value = args[i]
        else:
            default = signature.parameters[name].default
            value = None if default is inspect.Parameter.empty else default
    return generator_from(value, name)


def with_call_generator(model: Any, signature: inspect.Signature, name: str | None, args: tuple[Any, ...],
                        kwargs: dict[str, Any]) -> Any:
    """``model``, or a :class:`SeededSampler` on the generator the call passes in its random argument."""
    if name is None or model is None:
        return model
    rng = call_generator(signature, name, args, kwargs)
    return model if rng is None else SeededSampler(model, rng)
