"""Data paths and access records: the data model of interface discovery.

A *path* names one place a function can read or write: an argument and the
attributes, items and elements below it, a module global, a closure cell, or
the return value.  It is a tuple ``(root, *steps)``:

- roots: ``("arg", name)``, ``("global", module, name)``, ``("closure", name)``,
  ``("return",)``;
- steps: ``("attr", name)``, ``("item", key)`` (a dict key or tuple index),
  ``("each",)`` (every element of a list: the collection is variable-length).

:func:`render` writes a path the way reports and ``--json`` show it:
``track.momentum.x``, ``hits[*].x``, ``cfg['dt']``, ``global:heat.ALPHA``,
``closure:scale``, ``return[0]``.

Example
-------
>>> render((("arg", "hits"), ("each",), ("attr", "x")))
'hits[*].x'
>>> render((("global", "heat", "CONFIG"), ("attr", "dx")))
'global:heat.CONFIG.dx'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Path = tuple

EACH = ("each",)
KINDS = ("in", "out", "inout", "unused", "scratch")


def render(path: Path) -> str:
    """A path as text (see the module docstring)."""
    root = path[0]
    if root[0] == "arg":
        out = root[1]
    elif root[0] == "global":
        out = f"global:{root[1]}.{root[2]}"
    elif root[0] == "closure":
        out = f"closure:{root[1]}"
    else:
        out = "return"
    for step in path[1:]:
        if step[0] == "attr":
            out += f".{step[1]}"
        elif step[0] == "item":
            out += f"[{step[1]!r}]"
        else:
            out += "[*]"
    return out


def normalized(path: Path) -> tuple:
    """The path without item/element steps: what static and dynamic analysis can both name."""
    return (path[0],) + tuple(s for s in path[1:] if s[0] == "attr")


_SCALAR_TYPES = frozenset((bool, int, float, complex))


def is_scalar(value: Any) -> bool:
    # type() checks, not isinstance: isinstance on a traced object would call its __getattribute__.
    t = type(value)
    return t in _SCALAR_TYPES or issubclass(t, (bool, int, float, complex, np.generic))


def is_numeric(value: Any) -> bool:
    if isinstance(value, (bool, int, float, np.bool_, np.number)):
        return True
    return isinstance(value, np.ndarray) and value.dtype.kind in "biuf"


def describe(value: Any) -> tuple[tuple[int, ...] | None, str | None]:
    """(shape, dtype) of a numeric value, ``(None, None)`` for anything else."""
    if isinstance(value, bool):
        return (), "bool"
    if isinstance(value, int):
        return (), "int64"
    if isinstance(value, float):
        return (), "float64"
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in "biuf":
        return tuple(int(s) for s in value.shape), str(value.dtype)
    return None, None


@dataclass
class Access:
    """Everything observed about one path during one or more calls.

    ``first`` is the first event (``"read"`` or ``"write"``); ``rbw`` says
    data was read before the call had written it (so the caller's value
    matters); ``changed`` says the value differs after the call (snapshot
    comparison).  ``touched`` marks a load of the whole value (e.g. a
    parameter name or an attribute holding a list) whose parts were not
    individually observed.
    """

    path: Path
    first: str | None = None
    read: bool = False
    written: bool = False
    rbw: bool = False
    changed: bool = False
    touched: bool = False
    new_object: bool = False
    expanded: bool = False  # an object whose fields are recorded as separate paths
    shapes: set = field(default_factory=set)
    dtypes: set = field(default_factory=set)
    lengths: set = field(default_factory=set)
    type_name: str | None = None
    type_ref: type | None = None  # an object's class, seen in the traced call (to build it in a proposal)
    methods: set = field(default_factory=set)
    fields: list = field(default_factory=list)  # an object's field names, in declaration order
    lines: set = field(default_factory=set)
    notes: list = field(default_factory=list)

    def on_read(self) -> None:
        if self.first is None:
            self.first = "read"
        if not self.written:
            self.rbw = True
        self.read = True

    def on_write(self) -> None:
        if self.first is None:
            self.first = "write"
        self.written = True

    def observe(self, value: Any) -> None:
        shape, dtype = describe(value)
        if shape is not None:
            self.shapes.add(shape)
            self.dtypes.add(dtype)
        elif self.type_name is None and value is not None:
            self.type_name = getattr(type(value), "_phasm_traced_base", type(value)).__name__

    def merge(self, other: "Access") -> None:
        self.first = self.first or other.first
        for name in ("read", "written", "rbw", "changed", "touched", "new_object", "expanded"):
            setattr(self, name, getattr(self, name) or getattr(other, name))
        for name in ("shapes", "dtypes", "lengths", "methods", "lines"):
            getattr(self, name).update(getattr(other, name))
        self.type_name = self.type_name or other.type_name
        self.type_ref = self.type_ref or other.type_ref
        self.fields = self.fields or list(other.fields)
        self.notes.extend(n for n in other.notes if n not in self.notes)

    @property
    def kind(self) -> str:
        """in / out / inout / unused / scratch (see docs/sections/discover.md)."""
        if self.path[0][0] == "return":
            return "out"
        if self.written or self.changed:
            if self.rbw or (self.changed and not self.written and self.first != "write"):
                return "inout"
            if not self.changed and self.first == "write":
                return "scratch"
            return "out"
        if self.read or self.touched:
            return "in"
        return "unused"
