"""Building blocks of object optics: class names, module globals, return values built on write-back.

Optics hold the classes they build as the class objects the code gave them;
records in files name them (``"module:qualname"``) for people only, and nothing
is ever imported or resolved from such a name.  A return value that output
optics fill field by field is collected in a :class:`ReturnBuilder` and
constructed once every output is in (:func:`finish_frame`): ``cls(**fields)``
for a class, a dict, or a tuple.

Example
-------
>>> frame = CallFrame({})
>>> Global("math", "pi").get(frame) > 3
True
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from phasm.bindings.optics import CallFrame, Optic, OpticError

# -- class names (for records and messages; never resolved back) ---------------------


def class_ref(cls: Any) -> str | None:
    """``"module:qualname"`` of a class (``"dict"``, ``"list"``, ``"tuple"`` for those), for records."""
    if cls is None:
        return None
    if cls in (dict, list, tuple):
        return str(cls.__name__)
    return f"{cls.__module__}:{cls.__qualname__}"


def check_class(cls: Any, where: str) -> Any:
    """``cls`` if it is a class (or ``None``); a string or other object is an :class:`OpticError`."""
    if cls is not None and not isinstance(cls, type):
        raise OpticError(f"{where}: cls must be a class (the object itself, e.g. cls=Result), got {type(cls).__name__} {cls!r}")
    return cls


# -- globals ----------------------------------------------------------------


class Global(Optic):
    """A module-level name: ``Global("physics.constants", "C")``."""

    kind = "global"

    def __init__(self, module: str, name: str) -> None:
        if not module or not name:
            raise OpticError(f"a global needs a module and a name, got module={module!r} name={name!r}")
        self.module = module
        self.name = name

    def _module(self) -> Any:
        """The object that holds ``name``: the module, or, for ``"pkg.mod.obj.attr"`` written
        with dots only, an object reached from the longest importable module prefix."""
        mod = sys.modules.get(self.module)
        if mod is not None:
            return mod
        try:
            return importlib.import_module(self.module)
        except ImportError as exc:
            first_error = exc
        parts = self.module.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                break
            return obj
        raise OpticError(f"global {self!r}: cannot import module {self.module!r}: {first_error}") from None

    def get(self, frame: CallFrame) -> Any:
        try:
            return getattr(self._module(), self.name)
        except AttributeError:
            raise OpticError(f"global {self!r}: {self.module!r} has no name {self.name!r}") from None

    def put(self, frame: CallFrame, value: Any, **kw: Any) -> None:
        setattr(self._module(), self.name, value)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "module": self.module, "name": self.name}

    def __repr__(self) -> str:
        return f"global:{self.module}.{self.name}"


# -- building return values on write-back ----------------------------------------


class ReturnBuilder:
    """A return value under construction: fields collected until :func:`finish_frame`."""

    __slots__ = ("cls", "fields")

    def __init__(self, cls: Any) -> None:
        self.cls = cls
        self.fields: dict[Any, Any] = {}

    def build(self) -> Any:
        done = {k: (v.build() if isinstance(v, ReturnBuilder) else v) for k, v in self.fields.items()}
        if self.cls is dict:
            return done
        if self.cls in (list, tuple):
            n = max(done) + 1 if done else 0
            items = [done.get(i) for i in range(n)]
            return tuple(items) if self.cls is tuple else items
        try:
            return self.cls(**done)
        except TypeError as exc:
            raise OpticError(f"cannot build {self.cls.__qualname__}(**{sorted(done)}): {exc}") from None


def finish_frame(frame: CallFrame) -> Any:
    """Construct a return value that output optics built field by field; returns ``frame.result``."""
    if isinstance(frame.result, ReturnBuilder):
        frame.result = frame.result.build()
    return frame.result
