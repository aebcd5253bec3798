"""Concise declarations of model variables bound to program data, exported from ``phasm``.

Each helper returns a :class:`~phasm.bindings.spec.Variable` whose name is
filled from the key of the ``inputs=``/``outputs=`` dict it is put in
(declarations in ``outputs=`` become outputs).

Example
-------
>>> import phasm
>>> from dataclasses import dataclass
>>> @dataclass
... class Fit:
...     slope: float
...     intercept: float
>>> decl = dict(
...     inputs={"E": phasm.attr("particle.energy"), "hits": phasm.each("hits", fields=["x", "y"])},
...     outputs=phasm.fields("return", Fit),
... )
>>> sorted(decl["outputs"]), decl["inputs"]["hits"].ragged
(['intercept', 'slope'], True)
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Iterable, Sequence

import numpy as np

from phasm.bindings.each import Each
from phasm.bindings.optics import OpticError
from phasm.bindings.paths import Path
from phasm.bindings.spec import Variable
from phasm.errors import SpecError


def _shape(shape: Iterable[int] | int) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def _var(optic: Any, shape: Any, dtype: Any, direction: str, **kw: Any) -> Variable:
    """``shape=None`` / ``dtype=None``: inferred from the first call (or from a loaded model's spec)."""
    infer = [name for name, given in (("shape", shape), ("dtype", dtype)) if given is None]
    meta = {"infer": infer} if infer else {}
    return Variable(None, () if shape is None else _shape(shape), np.dtype("float64" if dtype is None else dtype),
                    direction, optic, meta=meta, **kw)


def attr(path: str, shape: Iterable[int] | int | None = (), dtype: Any = "float64", *, direction: str = "in", cls: Any = None) -> Variable:
    """A value at an attribute path: ``"particle.energy"``, ``"track.momentum.x"``, ``"return.slope"``.

    ``cls``: when the path writes into the return value, the class to build it
    from (``cls(**fields)`` once every output is written).  ``shape=None`` and/or
    ``dtype=None``: taken from the first call (every helper here accepts them).

    >>> attr("track.momentum.x").optic
    track.momentum.x
    """
    return _var(Path.parse(path, classes=[cls] if cls is not None else ()), shape, dtype, direction)


def item(path: str, key: int | str, shape: Iterable[int] | int | None = (), dtype: Any = "float64", *, direction: str = "in") -> Variable:
    """Item ``key`` of a container: ``item("cfg", "alpha")`` is ``cfg['alpha']``; ``item("return", 0)`` a returned tuple's first item.

    >>> item("cfg", "alpha").optic
    cfg['alpha']
    """
    return _var(Path.parse(path).then("item", key), shape, dtype, direction)


def setter(path: str, *, get: str, set: str, shape: Iterable[int] | int | None = (), dtype: Any = "float64", direction: str = "in") -> Variable:
    """A value behind a getter/setter method pair of an (encapsulated) object.

    >>> setter("step", get="get_edep", set="set_edep").optic
    step.get_edep()/set_edep()
    """
    return _var(Path.parse(path).then("call", (get, set)), shape, dtype, direction)


def glob(path: str, shape: Iterable[int] | int | None = (), dtype: Any = "float64", *, direction: str = "in") -> Variable:
    """A module-level global: ``glob("physics.constants.C")`` or ``glob("physics.constants:C.value")``.

    >>> glob("math.pi").optic
    global:math.pi
    """
    text = path if path.startswith("global:") or ":" in path else "global:" + path
    return _var(Path.parse(text), shape, dtype, direction)


def each(
    path: str,
    fields: Sequence[str] | None = None,
    *,
    dtype: Any = "float64",
    max_len: int | None = None,
    cls: Any = None,
    direction: str = "in",
) -> Variable:
    """Each element of a collection: a variable-length (ragged) variable of ``len(fields)`` columns.

    ``fields``: attribute names, dict keys or relative paths of each element
    (``None``: the elements are numbers).  ``max_len``: a longer collection is
    an error.  ``cls``: the class of elements built on write-back (default: dicts).

    >>> v = each("hits", fields=["x", "y", "z", "e"], max_len=64)
    >>> v.ragged, v.shape, v.optic
    (True, (4,), each(hits)[x, y, z, e])
    """
    optic = Each(path, fields, cls=cls, max_len=max_len, dtype=dtype)
    meta = {"max_len": int(max_len)} if max_len is not None else {}
    return Variable(None, optic.element_shape, np.dtype(dtype), direction, optic, ragged=True, meta=meta)


_NUMERIC = {float: "float64", int: "int64", bool: "bool"}


def _numeric_dtype(tp: Any) -> np.dtype | None:
    if tp in _NUMERIC:
        return np.dtype(_NUMERIC[tp])
    if isinstance(tp, type) and issubclass(tp, (np.number, np.bool_)):
        return np.dtype(tp)
    return None


def _record_fields(cls: Any) -> list[tuple[str, Any]] | None:
    """``(name, type)`` of a dataclass or attrs class; ``None`` for other classes."""
    if dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls)]
    elif hasattr(cls, "__attrs_attrs__"):
        names = [a.name for a in cls.__attrs_attrs__]
    else:
        return None
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        hints = {}
    if dataclasses.is_dataclass(cls):
        raw = {f.name: f.type for f in dataclasses.fields(cls)}
    else:
        raw = {a.name: a.type for a in cls.__attrs_attrs__}
    return [(n, hints.get(n, raw.get(n))) for n in names]


def fields(path: str, cls: Any, *, direction: str = "in", prefix: str | None = None) -> dict[str, Variable]:
    """One variable per numeric field of a dataclass or attrs class (nested records expand too).

    For an argument ``fields("track", Track)`` gives ``{"track.x": ..., "track.p.x": ...}``;
    for the return value ``fields("return", Fit)`` gives ``{"slope": ..., "intercept": ...}``
    and, in ``outputs=``, builds a ``Fit(slope=..., intercept=...)`` on write-back.
    Non-numeric fields are skipped.  Splat it: ``inputs={**phasm.fields("track", Track), ...}``.
    """
    if _record_fields(cls) is None:
        raise SpecError(f"fields({path!r}, {getattr(cls, '__qualname__', cls)!r}): expected a dataclass or attrs class")
    root = Path.parse(path, classes=[cls])
    if prefix is None:
        prefix = "" if path == "return" else (path[len("return."):] + "." if path.startswith("return.") else path + ".")
    out: dict[str, Variable] = {}

    def walk(p: Path, c: Any, name: str, seen: tuple[Any, ...]) -> None:
        for fname, tp in _record_fields(c) or []:
            dt = _numeric_dtype(tp)
            child = p.then("attr", fname, tp if _record_fields(tp) is not None else None)
            if dt is not None:
                out[name + fname] = Variable(None, (), dt, direction, child)
            elif _record_fields(tp) is not None and tp not in seen:
                walk(child, tp, f"{name}{fname}.", (*seen, tp))

    walk(root, cls, prefix, (cls,))
    if not out:
        raise SpecError(f"fields({path!r}, {cls.__qualname__}): the class has no numeric fields (float, int, bool)")
    return out


__all__ = ["OpticError", "attr", "each", "fields", "glob", "item", "setter"]
