"""Stochastic functions: a generative model answers with a fresh sample per call
(a mixin of :class:`~phasm.surrogate.Surrogate`).

``@phasm.surrogate(stochastic=True)`` declares that the function draws random numbers, so the same
inputs give different outputs.  Captures are stored as usual (one draw per row); :meth:`train`
fits a conditional generator of the outputs given the inputs (backend ``flow`` by default, or
``vae``) and, with a :class:`phasm.DistributionTolerance`, gates it on held-out distributions
(:mod:`phasm.gate.distribution`).  In ``model`` and ``auto`` mode each call (each row of a batched
call) gets a new sample:

- from the surrogate's stream, restarted by :meth:`StochasticCalls.seed` (fresh entropy until
  then, as an unseeded simulation would be), or
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

    def predict(self, X: np.ndarray) -> np.ndarray:
        from phasm.train.stochastic import sample_model

        return sample_model(self.art, X, self.rng)

    def __getattr__(self, name: str) -> Any:  # the gate may read the artefact's spec, backend, ...
        return getattr(self.art, name)


class StochasticCalls:
    """Seeding and per-call generators of a stochastic surrogate (mixed into ``Surrogate``)."""

    def seed(self, seed: int | np.random.SeedSequence | None) -> None:
        """Restart the stream the model's samples are drawn from (``None``: fresh entropy).

        The same seed and the same calls give the same answers, also after :meth:`load`.

        >>> import phasm
        >>> f = phasm.surrogate(lambda x: x, name="f", stochastic=True)
        >>> f.seed(7)
        """
        if not self.stochastic:
            raise ValueError(f"{self.name}: seed() is for stochastic surrogates; declare phasm.surrogate(stochastic=True)")
        self._sample_seed = seed
        model = self._live[0]
        if model is not None:
            model.backend.reseed(seed)

    def _seed_model(self, art: Any) -> None:
        """A newly attached generative model draws from the surrogate's stream."""
        reseed = getattr(art.backend, "reseed", None)
        if getattr(art.backend, "stochastic", False) and reseed is not None:
            reseed(self._sample_seed)

    def _with_call_generator(self, model: Any, args: tuple, kwargs: dict) -> Any:
        """``model``, or a :class:`SeededSampler` on the generator passed in the function's random argument."""
        name = self.random_argument
        if name is None or model is None:
            return model
        if name in kwargs:
            value = kwargs[name]
        else:
            i = self._param_names.index(name)
            if i < len(args):
                value = args[i]
            else:
                default = self._signature.parameters[name].default
                value = None if default is inspect.Parameter.empty else default
        rng = generator_from(value, name)
        return model if rng is None else SeededSampler(model, rng)
