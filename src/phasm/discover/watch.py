"""Watch the opaque objects a call can reach: their state before and after the call.

The tracer cannot see inside objects of compiled extensions (see
:mod:`phasm.discover.opaque`), and when such an object cannot be deep-copied
the call runs on the caller's own object, so no snapshot comparison can show a
change either.  :class:`OpaqueWatch` finds every opaque object reachable from
the call's arguments, globals and closure cells (through lists, tuples, dicts
and the fields of Python objects), takes a picture of each before the call, and
compares it with a picture taken after: the same objects, by identity.

Example
-------
>>> import collections
>>> from phasm.discover.paths import render
>>> state = {"args": {"log": collections.deque([1])}, "globals": {}, "cells": {}}
>>> watch = OpaqueWatch(state)
>>> state["args"]["log"].append(2)
>>> [(render(p), o.type_name, o.changed) for p, o in watch.compare().items()]
[('log', 'deque', ['items'])]
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from phasm.discover.opaque import changed_parts, extension_type, is_random_generator, observable_state
from phasm.discover.paths import EACH, Path, is_scalar
from phasm.discover.tracing import fields_of

_MAX_OBJECTS = 2000  # opaque objects watched per call
_MAX_NODES = 20_000  # values visited while looking for them
_MAX_DEPTH = 4
_CODE = (types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.ModuleType, type)


@dataclass
class OpaqueObservation:
    """What one or more calls did to the opaque object(s) at one path."""

    path: Path
    type_name: str
    random: bool = False  # a random generator
    observable: bool = False  # some of its state could be read
    changed: list[str] = field(default_factory=list)  # the parts of its state that changed

    def merge(self, other: "OpaqueObservation") -> None:
        self.random = self.random or other.random
        self.observable = self.observable or other.observable
        self.changed.extend(c for c in other.changed if c not in self.changed)


def find_opaque(state: dict[str, dict]) -> dict[Path, list[Any]]:
    """Opaque objects reachable from ``{"args": {name: v}, "globals": {path: v}, "cells": {path: v}}``, by path."""
    stack: list[tuple[Path, Any, int]] = []
    for name, value in state["args"].items():
        stack.append(((("arg", name),), value, 0))
    for section in ("globals", "cells"):
        for path, value in state[section].items():
            stack.append((path, value, 0))
    found: dict[Path, list[Any]] = {}
    seen: set[int] = set()
    count = nodes = 0
    while stack and count < _MAX_OBJECTS and nodes < _MAX_NODES:
        path, value, depth = stack.pop()
        nodes += 1
        if value is None or is_scalar(value) or isinstance(value, (str, bytes, np.ndarray, type)) or id(value) in seen:
            continue
        seen.add(id(value))
        if extension_type(value) is not None:
            found.setdefault(path, []).append(value)
            count += 1
            continue
        if depth >= _MAX_DEPTH or isinstance(value, _CODE):
            continue
        if isinstance(value, list):
            stack.extend((path + (EACH,), v, depth + 1) for v in list.__iter__(value))
        elif isinstance(value, tuple):
            stack.extend((path + (("item", i),), v, depth + 1) for i, v in enumerate(value))
        elif isinstance(value, dict):
            stack.extend((path + (("item", k),), v, depth + 1) for k, v in dict.items(value)
                         if isinstance(k, (str, int)))
        else:
            stack.extend((path + (("attr", k),), v, depth + 1) for k, v in fields_of(value).items())
    return found


class OpaqueWatch:
    """Pictures of the opaque objects of a call's state, taken now; :meth:`compare` after the call."""

    def __init__(self, state: dict[str, dict]) -> None:
        self.objects = find_opaque(state)
        self.before = {path: [self._picture(o) for o in objs] for path, objs in self.objects.items()}

    @staticmethod
    def _picture(obj: Any) -> dict[str, Any] | None:
        try:
            return observable_state(obj)
        except Exception:  # noqa: BLE001 - an object that fails to show its state is simply not observable
            return None

    def compare(self) -> dict[Path, OpaqueObservation]:
        """One observation per path: which parts of the objects' state the call changed."""
        out: dict[Path, OpaqueObservation] = {}
        for path, objs in self.objects.items():
            obs = OpaqueObservation(path, type(objs[0]).__qualname__, random=is_random_generator(objs[0]))
            for obj, before in zip(objs, self.before[path]):
                after = self._picture(obj)
                if before is None and after is None:
                    continue
                obs.observable = True
                obs.changed.extend(c for c in changed_parts(before, after) if c not in obs.changed)
            out[path] = obs
        return out


__all__ = ["OpaqueObservation", "OpaqueWatch", "find_opaque"]
