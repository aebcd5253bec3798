"""The gate kinds a model folder may name: a table of classes, filled explicitly.

A model folder records its gate as JSON with a ``kind``; loading looks the kind
up here, so a file picks one of these classes by name and never names a class
or module itself.  Registering a gate of your own (:func:`register_gate`)
needs a ``kind`` the class defines itself: a subclass that inherits ``kind``
(``class MyGate(phasm.Gate)``) can never replace a built-in gate, and a kind
already taken by another class is refused.

Example
-------
>>> import phasm
>>> class HalfGate(phasm.Gate):
...     kind = "example-half"
...     def accept(self, X, Y, model):
...         return np.arange(len(X)) % 2 == 0
>>> register_gate(HalfGate) is HalfGate
True
>>> type(gate_from_json({"kind": "example-half"})).__name__
'HalfGate'
>>> class Inherits(phasm.FiniteGate): ...
>>> register_gate(Inherits)
Traceback (most recent call last):
...
phasm.errors.GateError: gate class Inherits: set a kind of its own (a class attribute, e.g. kind = "my-gate") to register it; it inherits kind 'finite' from FiniteGate
"""

from __future__ import annotations

from typing import Any, TypeVar

from phasm.errors import GateError
from phasm.gate.base import FiniteGate, Gate
from phasm.gate.conformal import ConformalGate
from phasm.gate.distribution import DistributionGate
from phasm.gate.domain import DomainGate
from phasm.gate.ragged import RaggedConformalGate
from phasm.gate.range import RangeGate

__all__ = ["gate_from_json", "gate_kinds", "register_gate"]

GateT = TypeVar("GateT", bound=type[Gate])

_KINDS: dict[str, type[Gate]] = {}


def register_gate(cls: GateT) -> GateT:
    """Let model folders name ``cls`` by its ``kind`` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Gate)):
        raise GateError(f"register_gate: expected a phasm.Gate subclass, got {cls!r}")
    kind = cls.__dict__.get("kind")
    if not isinstance(kind, str) or not kind:
        owner = next((c.__name__ for c in cls.__mro__[1:] if "kind" in c.__dict__), "Gate")
        raise GateError(f"gate class {cls.__qualname__}: set a kind of its own (a class attribute, e.g. "
                        f'kind = "my-gate") to register it; it inherits kind {cls.kind!r} from {owner}')
    taken = _KINDS.get(kind)
    if taken is not None and taken is not cls:
        raise GateError(f"gate kind {kind!r} is taken by {taken.__module__}.{taken.__qualname__}; "
                        f"give {cls.__qualname__} another kind")
    _KINDS[kind] = cls
    return cls


def gate_kinds() -> dict[str, type[Gate]]:
    """The registered kinds and their classes."""
    return dict(_KINDS)


def gate_from_json(d: dict[str, Any] | None) -> Gate:
    """Rebuild a gate from its artefact record (``None`` or empty: the finite gate)."""
    if not d:
        return FiniteGate()
    if not isinstance(d, dict):
        raise GateError(f"gate record must be a JSON object, got {type(d).__name__}")
    kind = d.get("kind")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise GateError(f"unknown gate kind {kind!r}; known: {sorted(_KINDS)}")
    return cls.from_json(d)


BUILTIN_GATES: tuple[type[Gate], ...] = (FiniteGate, DomainGate, RangeGate, ConformalGate, RaggedConformalGate,
                                         DistributionGate)
for gate_class in BUILTIN_GATES:
    register_gate(gate_class)
