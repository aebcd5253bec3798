"""Opaque objects: instances of compiled extension types, and what can be observed of their state.

Objects of compiled extensions (pybind11, Cython, plain C types: chemistry and
physics engines, h5py handles, ``array.array``, ``collections.deque``, numpy
random generators, ctypes structures) keep their state in C memory.  The
tracer cannot follow them attribute by attribute, and a snapshot cannot walk
their fields.  This module tells them apart from Python objects
(:func:`extension_type`) and takes a comparable picture of what they show
(:func:`observable_state`), so that a call that changes one is still seen.

A type is an extension type when one of its classes stores instance data that
Python slots, ``__dict__`` and ``__weakref__`` do not account for (its
``__basicsize__`` grows more than they explain).  Builtin containers and
numbers are not opaque: their contents are visible.

:func:`observable_state` reads, without calling anything that could rebuild an
object (nothing is ever unpickled or reconstructed):

- random generators: ``bit_generator.state``, ``get_state()``, ``getstate()``;
- ``deque`` items; the raw bytes of any object with the buffer protocol
  (``array.array``, ``bytearray``, ctypes structures), as a digest;
- the data that the type's own ``__reduce_ex__``/``__getstate__`` returns
  (arguments and state, never the reconstructing callable);
- C-level attributes (getset and member descriptors of the extension classes),
  which is where Cython and pybind11 put properties such as a temperature;
- Python attributes of a Python subclass, and an informative ``repr``.

Example
-------
>>> import array, collections
>>> extension_type(array.array("d", [1.0])), extension_type([1.0]), extension_type(2.0)
('array', None, None)
>>> d = collections.deque([1, 2])
>>> before = observable_state(d)
>>> d.append(3)
>>> changed_parts(before, observable_state(d))
['items']
"""

from __future__ import annotations

import collections
import collections.abc
import ctypes
import functools
import hashlib
import random
import types
import warnings
from typing import Any

import numpy as np

# Builtins whose contents the tracer and the snapshots already see, whatever their C layout.
_VISIBLE = (list, dict, tuple, set, frozenset, str, bytes, int, float, complex, bool, BaseException,
            np.ndarray, np.generic, types.ModuleType, type)
_RNG_TYPES = (np.random.Generator, np.random.BitGenerator, np.random.RandomState, random.Random)
_MAX_BUFFER = 1 << 28  # bytes digested per object; larger buffers are left out
_MAX_ITEMS = 10_000  # elements of a sequence kept in a state picture
_MAX_ATTRS = 400  # C-level attributes read per object


def _python_added(cls: type) -> int:
    """Bytes of instance layout that ``class`` statements explain: slots, ``__dict__``, ``__weakref__``."""
    base = cls.__base__
    slots = cls.__dict__.get("__slots__", ())
    if isinstance(slots, str):
        slots = (slots,)
    size = 8 * sum(1 for s in slots if s not in ("__dict__", "__weakref__"))
    if cls.__weakrefoffset__ > 0 and base is not None and base.__weakrefoffset__ <= 0:
        size += 8
    if cls.__dictoffset__ > 0 and base is not None and base.__dictoffset__ <= 0:
        size += 8
    return size


@functools.lru_cache(maxsize=4096)
def _c_state_class(cls: type) -> type | None:
    """The first class of ``cls``'s MRO that stores instance data in C, if any."""
    if issubclass(cls, _VISIBLE):
        return None
    for klass in cls.__mro__:
        base = klass.__base__
        if base is not None and klass.__basicsize__ > base.__basicsize__ + _python_added(klass):
            return klass
    return None


def extension_type(value: Any) -> str | None:
    """The type name of ``value`` when it is an opaque extension object, else ``None``.

    The name is the object's own class (``Solution`` for a Python subclass of a
    Cython base), the one a user knows.
    """
    if value is None or callable(value):
        return None
    cls: type = type(value)
    if _c_state_class(cls) is None:
        return None
    return cls.__qualname__


def is_opaque(value: Any) -> bool:
    """``value`` keeps its state in a compiled extension (see :func:`extension_type`)."""
    return extension_type(value) is not None


def is_random_generator(value: Any) -> bool:
    """A random generator whose state advances when it draws (numpy or stdlib)."""
    return isinstance(value, _RNG_TYPES)


def observable_state(obj: Any, depth: int = 0) -> dict[str, Any] | None:
    """A picture of an opaque object's state as plain data (``{part: value}``), or ``None``.

    Two pictures compare with :func:`changed_parts`.  Reading never changes the
    object in a way the program could see (properties of C types are read;
    Python properties, which may do anything, are not).
    """
    with warnings.catch_warnings():  # a deprecated property read here is not the user's concern
        warnings.simplefilter("ignore")
        return _picture(obj, depth)


def _picture(obj: Any, depth: int) -> dict[str, Any] | None:
    parts: dict[str, Any] = {}
    if isinstance(obj, np.random.Generator):  # a generator's state is all there is to see
        return {"bit_generator.state": _plain(obj.bit_generator.state, depth)}
    if isinstance(obj, np.random.BitGenerator):
        return {"state": _plain(obj.state, depth)}
    if isinstance(obj, np.random.RandomState):
        return {"state": _plain(obj.get_state(legacy=False), depth)}
    if isinstance(obj, random.Random):
        return {"state": _plain(obj.getstate(), depth)}
    if isinstance(obj, collections.deque):
        parts["items"] = [_plain(v, depth + 1) for v in list(obj)[:_MAX_ITEMS]]
        parts["maxlen"] = obj.maxlen
    if isinstance(obj, (ctypes.Structure, ctypes.Union)):  # named fields over a C buffer
        for entry in getattr(type(obj), "_fields_", ()):
            parts.setdefault(entry[0], _plain(getattr(obj, entry[0]), depth + 1))
    for name, value in _c_attributes(obj, depth):
        parts.setdefault(name, value)
    if not isinstance(obj, (ctypes.Structure, ctypes.Union)):
        digest = _buffer_digest(obj)
        if digest is not None:
            parts["contents"] = digest
    if not parts:
        reduced = _reduced(obj, depth)
        if reduced is not None:
            parts["reduce"] = reduced
    for name, value in _python_fields(obj).items():
        parts.setdefault("." + name, _plain(value, depth + 1))
    if not parts:
        text = _informative_repr(obj)
        if text is not None:
            parts["repr"] = text
    return parts or None


def changed_parts(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """Names of the parts that differ between two pictures of :func:`observable_state`."""
    if before is None or after is None:
        return [] if before is after else ["state"]
    out = []
    for name in list(before) + [n for n in after if n not in before]:
        if name not in before or name not in after or not _same(before[name], after[name]):
            out.append(name.lstrip("."))
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)) or a.shape != b.shape or a.dtype != b.dtype:
            return False
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b) or (a != a and b != b)
    except Exception:  # noqa: BLE001 - values that refuse comparison count as changed
        return False


# -- the parts of a picture -----------------------------------------------------------------


def _plain(value: Any, depth: int) -> Any:
    """``value`` as plain comparable data (copies of arrays, lists of parts, nested pictures)."""
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return np.array(value, copy=True)
    if depth > 4:
        return f"<{type(value).__qualname__}>"
    if isinstance(value, (list, tuple)):
        items = [_plain(v, depth + 1) for v in value[:_MAX_ITEMS]]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {k: _plain(v, depth + 1) for k, v in list(value.items())[:_MAX_ITEMS]}
    if isinstance(value, (set, frozenset)):
        return sorted(repr(v) for v in value)
    if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', repr(value))}"
    if isinstance(value, collections.abc.Iterator):  # listitems / dictitems of a reduce value
        return [_plain(v, depth + 1) for v, _ in zip(value, range(_MAX_ITEMS))]
    if is_opaque(value):
        return observable_state(value, depth + 1)
    fields = _python_fields(value)
    if fields:
        return {k: _plain(v, depth + 1) for k, v in fields.items()}
    return _informative_repr(value) or f"<{type(value).__qualname__}>"


def _buffer_digest(obj: Any) -> str | None:
    try:
        view = memoryview(obj)
    except TypeError:
        return None
    with view:
        if view.nbytes > _MAX_BUFFER:
            return None
        return hashlib.blake2b(view.tobytes(), digest_size=16).hexdigest()


def _own(cls: type, name: str) -> bool:
    """``cls`` or one of its bases other than ``object`` defines ``name``."""
    return any(name in k.__dict__ for k in cls.__mro__ if k is not object)


def _reduced(obj: Any, depth: int) -> Any:
    """Arguments and state from the type's own ``__reduce_ex__``/``__getstate__`` (the callable is dropped)."""
    cls = type(obj)
    try:
        if _own(cls, "__reduce_ex__") or _own(cls, "__reduce__"):
            value = obj.__reduce_ex__(4)
            if isinstance(value, tuple):
                return _plain(value[1:], depth + 1)
        if _own(cls, "__getstate__"):
            return _plain(obj.__getstate__(), depth + 1)
    except Exception:  # noqa: BLE001 - the type refuses: no picture from this route
        return None
    return None


def _c_attributes(obj: Any, depth: int) -> list[tuple[str, Any]]:
    """Values of the C-level attributes (getset/member descriptors) of the object's extension classes."""
    out: list[tuple[str, Any]] = []
    for klass in type(obj).__mro__:
        if klass is object or _c_state_class(klass) is None:
            continue
        for name, desc in list(klass.__dict__.items()):
            if len(out) >= _MAX_ATTRS:
                return out
            if name.startswith("_") or not isinstance(desc, (types.GetSetDescriptorType,
                                                              types.MemberDescriptorType)):
                continue
            try:
                value = desc.__get__(obj, type(obj))
            except Exception:  # noqa: BLE001 - a property that needs more state, or raises by design
                continue
            if callable(value) and not is_opaque(value):
                continue
            out.append((name, _plain(value, depth + 1)))
    return out


def _python_fields(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        out.update(object.__getattribute__(obj, "__dict__"))
    except (AttributeError, TypeError):
        pass
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if isinstance(name, str) and not name.startswith("__"):
                try:
                    out[name] = object.__getattribute__(obj, name)
                except AttributeError:
                    pass
    return out


def _informative_repr(obj: Any) -> str | None:
    try:
        text = repr(obj)
    except Exception:  # noqa: BLE001
        return None
    return None if " at 0x" in text or len(text) > 100_000 else text


__all__ = ["changed_parts", "extension_type", "is_opaque", "is_random_generator", "observable_state"]
