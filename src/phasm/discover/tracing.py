"""Instrumented stand-ins for program data: they log every read and write by path.

The Python counterpart of a memory-access tracer.  :class:`Instrumenter`
walks a (deep-copied) value and replaces, in place where it can:

- numpy arrays by :class:`TracedArray` views (same memory, an ``ndarray``
  subclass whose indexing, ufunc and array-function hooks log reads and
  writes; a boolean "written" mask per array tells a read of data the call
  wrote itself from a read of the caller's data);
- lists and dicts by :class:`TracedList` / :class:`TracedDict` subclasses;
- instances of user classes by swapping their ``__class__`` to a generated
  subclass whose ``__getattribute__`` / ``__setattr__`` log (identity,
  ``isinstance`` and methods keep working; ``self`` inside methods is traced).

Every hook reports to the active :class:`Recorder`; with none active they
are plain pass-throughs.  One recorder at a time (tracing is not thread-safe).

Example
-------
>>> import numpy as np
>>> rec = Recorder()
>>> inst = Instrumenter(rec)
>>> a = inst.instrument(np.zeros(3), (("arg", "a"),))
>>> with rec:
...     a[0] = a[1] + 1.0
>>> acc = rec.accesses[(("arg", "a"),)]
>>> acc.first, acc.rbw, acc.written
('read', True, True)
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from phasm.discover import recorder as _rec
from phasm.discover.opaque import is_opaque
from phasm.discover.paths import EACH, Path
from phasm.discover.recorder import Recorder
from phasm.discover.tracearray import TracedArray, traced

_PATHS: dict[int, tuple[Path, "Recorder"]] = {}  # id(object) -> path, for class-swapped objects


# -- lists and dicts --------------------------------------------------------


def _read_elem(rec: Recorder, path: Path, value: Any) -> None:
    t = type(value)
    if t in _SCALAR_TYPES or issubclass(t, np.generic):
        rec.read(path, value)


class TracedList(list):
    """A list that logs element reads (``path[*]``) and structural writes."""

    _ph: tuple[Recorder, Path] | None = None
    _phasm_traced_base = list  # what it stands for, in reports and comparisons

    def _elem(self) -> Path:
        return self._ph[1] + (EACH,)  # type: ignore[index]

    def __getitem__(self, i: Any) -> Any:
        value = list.__getitem__(self, i)
        if self._ph is not None and _rec.ACTIVE is not None:
            for v in value if isinstance(i, slice) else (value,):
                _read_elem(self._ph[0], self._elem(), v)
        return value

    def __iter__(self) -> Any:
        if self._ph is None or _rec.ACTIVE is None:
            yield from list.__iter__(self)
            return
        rec, path = self._ph[0], self._elem()
        for v in list.__iter__(self):
            if _rec.ACTIVE is not None:
                _read_elem(rec, path, v)
            yield v

    def __len__(self) -> int:
        if self._ph is not None and _rec.ACTIVE is not None:
            self._ph[0].touch(self._ph[1])
        return list.__len__(self)

    def __setitem__(self, i: Any, value: Any) -> None:
        if self._ph is not None and _rec.ACTIVE is not None:
            self._ph[0].write(self._elem())
        list.__setitem__(self, i, value)

    def _mutator(name: str) -> Callable[..., Any]:  # type: ignore[misc]
        base = getattr(list, name)

        def method(self: "TracedList", *a: Any, **kw: Any) -> Any:
            if self._ph is not None and _rec.ACTIVE is not None:
                if name != "clear":  # append, sort, pop ...: the result depends on what was there
                    self._ph[0].read(self._ph[1])
                self._ph[0].write(self._ph[1])
            return base(self, *a, **kw)

        method.__name__ = name
        return method

    for _name in ("append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse",
                  "__delitem__", "__iadd__", "__imul__"):
        locals()[_name] = _mutator(_name)
    del _name, _mutator


class TracedDict(dict):
    """A dict that logs item reads (``path[key]``) and writes."""

    _ph: tuple[Recorder, Path] | None = None
    _phasm_traced_base = dict

    def _item(self, key: Any) -> Path:
        return self._ph[1] + (("item", key),)  # type: ignore[index]

    def __getitem__(self, key: Any) -> Any:
        value = dict.__getitem__(self, key)
        if self._ph is not None and _rec.ACTIVE is not None:
            _read_elem(self._ph[0], self._item(key), value)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        if key in self:
            return self[key]
        return default

    def values(self) -> Any:
        return [self[k] for k in dict.keys(self)]

    def items(self) -> Any:
        return [(k, self[k]) for k in dict.keys(self)]

    def __setitem__(self, key: Any, value: Any) -> None:
        if self._ph is not None and _rec.ACTIVE is not None:
            self._ph[0].write(self._item(key))
        dict.__setitem__(self, key, value)

    def _mutator(name: str) -> Callable[..., Any]:  # type: ignore[misc]
        base = getattr(dict, name)

        def method(self: "TracedDict", *a: Any, **kw: Any) -> Any:
            if self._ph is not None and _rec.ACTIVE is not None:
                if name != "clear":
                    self._ph[0].read(self._ph[1])
                self._ph[0].write(self._ph[1])
            return base(self, *a, **kw)

        method.__name__ = name
        return method

    for _name in ("update", "pop", "popitem", "clear", "setdefault", "__delitem__", "__ior__"):
        locals()[_name] = _mutator(_name)
    del _name, _mutator


# -- objects of user classes ------------------------------------------------

_SUBCLASSES: dict[type, type] = {}
_SCALAR_TYPES = frozenset((bool, int, float, complex))
_TRACED_TYPES = frozenset((TracedArray, TracedList, TracedDict))


def _traced_subclass(cls: type) -> type:
    sub = _SUBCLASSES.get(cls)
    if sub is not None:
        return sub
    # the class's own (unbound) methods, called with the instance: mypy would read cls.__x__ as bound to cls
    base_getattribute: Callable[[Any, str], Any] = getattr(cls, "__getattribute__")
    base_setattr: Callable[[Any, str, Any], None] = getattr(cls, "__setattr__")
    base_delattr: Callable[[Any, str], None] = getattr(cls, "__delattr__")

    def __getattribute__(self: Any, name: str) -> Any:
        value = base_getattribute(self, name)
        if _rec.ACTIVE is None or name[:2] == "__":
            return value
        entry = _PATHS.get(id(self))
        if entry is None:
            return value
        path, rec = entry
        t = type(value)
        if t in _SCALAR_TYPES or issubclass(t, np.generic):
            acc = rec.accesses.get(path + (("attr", name),))
            if acc is not None and acc.read and (acc.written or acc.rbw):
                return value  # nothing new to learn
            rec.read(path + (("attr", name),), value)
        elif t in _TRACED_TYPES:
            pass
        elif callable(value) and not issubclass(t, (np.ndarray, list, dict)):
            rec.access(path).methods.add(name)
        elif id(value) not in _PATHS:
            rec.touch(path + (("attr", name),), value)
        return value

    def __setattr__(self: Any, name: str, value: Any) -> None:
        entry = _PATHS.get(id(self))
        if _rec.ACTIVE is not None and entry is not None:
            path, rec = entry
            rec.write(path + (("attr", name),), value)
        base_setattr(self, name, value)

    def __delattr__(self: Any, name: str) -> None:
        entry = _PATHS.get(id(self))
        if _rec.ACTIVE is not None and entry is not None:
            entry[1].write(entry[0] + (("attr", name),))
        base_delattr(self, name)

    sub = type(cls.__name__, (cls,), {
        "__slots__": (), "__getattribute__": __getattribute__, "__setattr__": __setattr__,
        "__delattr__": __delattr__, "__module__": cls.__module__, "__qualname__": cls.__qualname__,
        "_phasm_traced_base": cls,
    })
    _SUBCLASSES[cls] = sub
    return sub


def fields_of(obj: Any) -> dict[str, Any]:
    out = {}
    if hasattr(obj, "__dict__"):
        out.update(vars(obj))
    for klass in type(obj).__mro__:
        for name in getattr(klass, "__slots__", ()) or ():
            if isinstance(name, str) and not name.startswith("__") and hasattr(obj, name):
                out[name] = object.__getattribute__(obj, name)
    return out


class Instrumenter:
    """Replaces arrays, lists, dicts and objects inside a value by traced stand-ins.

    Objects are changed in place (class swap, attributes replaced by traced
    views), so instrument deep copies, never the caller's data; call
    :meth:`undo` after the run to give objects their classes back.
    """

    def __init__(self, rec: Recorder, max_depth: int = 8, max_nodes: int = 200_000) -> None:
        self.rec = rec
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self._memo: dict[int, Any] = {}
        self._swapped: list[tuple[Any, type]] = []
        self._keep: list[Any] = []
        self._nodes = 0

    def instrument(self, value: Any, path: Path, depth: int = 0) -> Any:
        """The traced stand-in for ``value`` at ``path`` (``value`` itself when it needs none)."""
        if value is None or isinstance(value, (str, bytes, bool, int, float, complex, np.generic, type)):
            return value
        key = id(value)
        if key in self._memo:
            return self._memo[key]
        self._nodes += 1
        if depth > self.max_depth or self._nodes > self.max_nodes:
            return value
        self._keep.append(value)
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biufc" or isinstance(value, TracedArray):
                return value
            view = traced(value, self.rec, path)
            self._memo[key] = view
            return view
        if type(value) is list:
            traced_list = TracedList()
            self._memo[key] = traced_list
            list.extend(traced_list, [self.instrument(v, path + (EACH,), depth + 1) for v in value])
            traced_list._ph = (self.rec, path)
            return traced_list
        if type(value) is dict:
            traced_dict = TracedDict()
            self._memo[key] = traced_dict
            for k, v in value.items():
                dict.__setitem__(traced_dict, k, self.instrument(v, path + (("item", k),), depth + 1))
            traced_dict._ph = (self.rec, path)
            return traced_dict
        if type(value) is tuple:
            items = tuple(self.instrument(v, path + (("item", i),), depth + 1) for i, v in enumerate(value))
            self._memo[key] = items
            return items
        if callable(value) or type(value).__module__ in ("builtins",) or is_opaque(value):
            return value  # a compiled extension's object cannot be traced field by field (see opaque.py)
        cls = type(value)
        try:
            value.__class__ = _traced_subclass(cls)
        except TypeError:
            return value
        self._swapped.append((value, cls))
        self._memo[key] = value
        _PATHS[key] = (path, self.rec)
        for name, v in fields_of(value).items():
            new = self.instrument(v, path + (("attr", name),), depth + 1)
            if new is not v:
                object.__setattr__(value, name, new)
        return value

    def undo(self) -> None:
        """Give swapped objects their own classes back and forget their paths."""
        for obj, cls in reversed(self._swapped):
            try:
                obj.__class__ = cls
            except TypeError:  # pragma: no cover - the swap worked, so the reverse does
                pass
            _PATHS.pop(id(obj), None)
        self._swapped.clear()
