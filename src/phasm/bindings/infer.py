"""Infer a spec from one observed call: names from the signature, shapes and dtypes from values.

Inputs are the arguments (scalars and numpy arrays); an array argument the
call changed in place becomes ``inout``.  Outputs are the return value: a
scalar, an array, or a tuple/dict of them.

Example
-------
>>> from phasm.bindings.optics import CallFrame
>>> spec = infer_spec("m.f", CallFrame({"x": 1.0, "n": 3}, 2.5))
>>> [v.describe() for v in spec.variables]
['x [in] scalar float64', 'n [in] scalar int64', 'result [out] scalar float64']
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from typing import Any, Iterable, Sequence

import numpy as np

from phasm.bindings.each import Each
from phasm.bindings.optics import Arg, CallFrame, Optic, Return
from phasm.bindings.paths import Path
from phasm.bindings.spec import Spec, Variable
from phasm.errors import SpecError

_SCALARS = (bool, int, float, np.generic)


def describe_value(name: str, value: Any, *, batched: bool, what: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape (without batch axis) and dtype of a numeric value, or a clear error."""
    if isinstance(value, _SCALARS) and not batched:
        arr = np.asarray(value)
        if isinstance(value, bool):
            arr = np.asarray(value, dtype=np.bool_)
        elif isinstance(value, int):
            arr = np.asarray(value, dtype=np.int64)
    elif isinstance(value, np.ndarray):
        arr = value
    else:
        raise SpecError(
            f"{what} {name!r} is a {type(value).__name__}, which phasm cannot infer a model variable from; "
            "pass numbers or numpy arrays, or declare inputs=/outputs= explicitly (with optics for objects)"
        )
    if arr.dtype.kind not in "biuf":
        raise SpecError(f"{what} {name!r} has non-numeric dtype {arr.dtype}; declare inputs=/outputs= explicitly")
    # Native byte order: one program passing a big-endian array (read from a FITS or HDF5 file) and
    # another a native one describe the same function, and share its store.
    dtype = arr.dtype.newbyteorder("=")
    if batched:
        if arr.ndim == 0:
            raise SpecError(f"{what} {name!r} of a batched function must have a leading batch axis, got a scalar")
        return tuple(arr.shape[1:]), dtype
    return tuple(arr.shape), dtype


def infer_spec(
    function: str,
    frame: CallFrame,
    *,
    mutated: Iterable[str] = (),
    batched: bool = False,
    skip: Iterable[str] = (),
) -> Spec:
    """Spec from a finished call ``frame`` (arguments and result).

    ``mutated``: array arguments the call changed in place (-> ``inout``).
    ``skip``: arguments that are not model inputs (e.g. ``self``).
    """
    return Spec(function, tuple(infer_variables(frame, mutated=mutated, batched=batched, skip=skip)), batched)


def infer_variables(frame: CallFrame, *, mutated: Iterable[str] = (), batched: bool = False, skip: Iterable[str] = (),
                    taken: Iterable[str] = (), outputs: bool = True) -> list[Variable]:
    """The variables :func:`infer_spec` infers from a finished call, as a list (inputs, then outputs).

    ``taken``: names already used (inferred output names avoid them); ``outputs=False``: the return
    value is not looked at.
    """
    mutated = set(mutated)
    skip = set(skip)
    variables: list[Variable] = []
    for name, value in frame.args.items():
        if name in skip:
            continue
        if not batched and _is_record(value):  # a dataclass / attrs instance: one variable per numeric field
            variables.extend(_record_variables(f"{name}.", Path(Arg(name)), value, "in"))
            continue
        if not batched and _is_record_list(value):  # a list of records: a ragged variable of their fields
            variables.append(_each_variable(name, value))
            continue
        shape, dtype = describe_value(name, value, batched=batched, what="argument")
        direction = "inout" if name in mutated else "in"
        variables.append(Variable(name, shape, dtype, direction, Arg(name)))
    result = frame.result if outputs else None
    taken = {str(v.name) for v in variables} | set(taken)
    if result is None:
        pass
    elif not batched and _is_record(result):  # built again from the model's outputs on write-back
        for v in _record_variables("", Path(Return(), classes=[type(result)]), result, "out"):
            variables.append(replace(v, name=_unique(str(v.name), taken)))
    elif isinstance(result, tuple):
        for i, item in enumerate(result):
            name = _unique(f"result{i}", taken)
            shape, dtype = describe_value(name, item, batched=batched, what="returned item")
            variables.append(Variable(name, shape, dtype, "out", Return(i)))
    elif isinstance(result, dict):
        for key, item in result.items():
            if not isinstance(key, str):
                raise SpecError(f"returned dict key {key!r} is not a string; declare outputs= explicitly")
            name = _unique(key, taken)
            shape, dtype = describe_value(name, item, batched=batched, what="returned item")
            variables.append(Variable(name, shape, dtype, "out", Return(key)))
    else:
        name = _unique("result", taken)
        shape, dtype = describe_value(name, result, batched=batched, what="return value")
        variables.append(Variable(name, shape, dtype, "out", Return()))
    return variables


def _is_record(value: Any) -> bool:
    cls = type(value)
    return (dataclasses.is_dataclass(cls) and not isinstance(value, type)) or hasattr(cls, "__attrs_attrs__")


def _is_record_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and _is_record(value[0]) and all(
        type(e) is type(value[0]) for e in value
    )


def _field_names(value: Any) -> list[str]:
    cls = type(value)
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    return [a.name for a in cls.__attrs_attrs__]


def _record_variables(prefix: str, path: Path, value: Any, direction: str, depth: int = 0) -> list[Variable]:
    """Variables for the numeric fields of a record instance (nested records expand; others are skipped)."""
    out: list[Variable] = []
    for fname in _field_names(value):
        child = getattr(value, fname)
        if _is_record(child) and depth < 8:
            out.extend(_record_variables(f"{prefix}{fname}.", path.then("attr", fname, type(child)), child, direction, depth + 1))
        elif isinstance(child, (*_SCALARS, np.ndarray)) and np.asarray(child).dtype.kind in "biuf":
            shape, dtype = describe_value(prefix + fname, child, batched=False, what="field")
            out.append(Variable(prefix + fname, shape, dtype, direction, path.then("attr", fname)))
    if not out and depth == 0:
        raise SpecError(f"{prefix.rstrip('.') or 'return value'} ({type(value).__name__}) has no numeric fields to model")
    return out


def _each_variable(name: str, items: Any) -> Variable:
    first = items[0]
    numeric = [f for f in _field_names(first) if isinstance(getattr(first, f), (bool, int, float, np.number))]
    if not numeric:
        raise SpecError(f"argument {name!r}: its {type(first).__name__} elements have no numeric scalar fields")
    kinds = {np.asarray(getattr(first, f)).dtype.kind for f in numeric}
    dtype = np.dtype("float64") if kinds - {"b", "i", "u"} else np.dtype("int64")
    return Variable(name, (len(numeric),), dtype, "in", Each(name, numeric, cls=type(first), dtype=dtype), ragged=True)


def _unique(name: str, taken: set[str]) -> str:
    out = name
    while out in taken:
        out = "_" + out
    taken.add(out)
    return out


# -- declarations whose shape/dtype come from the first call ---------------------------


def needs_inference(spec: Spec) -> bool:
    """Whether some declared variable left its shape or dtype to be inferred (``shape=None``/``dtype=None``)."""
    return any(v.meta.get("infer") for v in spec.variables)


def resolve_inferred(spec: Spec, *, frame: CallFrame | None = None, template: Spec | None = None) -> Spec:
    """Fill in inferred shapes/dtypes from a finished call ``frame`` or from ``template`` (a stored spec).

    Declared optics are kept; a variable the template lacks, or whose value
    cannot be read from the frame, is an error naming it.
    """

    from phasm.bindings.optics import OpticError

    out = []
    for v in spec.variables:
        infer = v.meta.get("infer")
        if not infer:
            out.append(v)
            continue
        if template is not None:
            try:
                t = template[v.name]  # type: ignore[index]
            except KeyError:
                raise SpecError(f"variable {v.name!r} (shape to be inferred) is not in the stored spec of {template.function}") from None
            shape, dtype = t.shape, t.dtype
        elif frame is not None:
            try:
                value = v.optic.get(frame)  # type: ignore[union-attr]
            except OpticError as exc:
                raise SpecError(f"{spec.function}: variable {v.name!r}: {exc}") from None
            if isinstance(value, (list, tuple)):
                value = np.asarray(value)
            shape, dtype = describe_value(v.name, value, batched=spec.batched, what="variable")  # type: ignore[arg-type]
        else:
            raise SpecError(f"variable {v.name!r}: its shape is to be inferred, but there is no call or stored spec yet")
        meta = {k: x for k, x in v.meta.items() if k != "infer"}
        out.append(replace(v, shape=shape if "shape" in infer else v.shape, dtype=dtype if "dtype" in infer else v.dtype, meta=meta))
    return Spec(spec.function, tuple(out), spec.batched)


# -- a spec read from a file, bound to a function by the code's own conventions -----------


def bind_by_signature(stored: Spec, params: Sequence[str], *, function: str, batched: bool, what: str,
                      declared: Sequence[Variable] = ()) -> Spec:
    """Bind a spec read from a file (a store or model folder: no optics) to a function whose code declares
    no variables, the way :func:`infer_spec` would bind the function's own call.

    An input variable is the argument of the same name, read only.  Output variables are the return
    value: the whole value, the items of a returned tuple, or the items of a returned dict (the file's
    ``return`` records say which; nothing else in them is used).  Anything else (a variable that is not
    an argument, an array changed in place, object fields, collections, globals) is never taken from a
    file: it is an error that says to declare the variables, or to call the function once first so that
    its spec comes from the call.  ``declared``: variables the code declares (a partial declaration):
    those keep their optics, the others are bound as above.

    >>> stored = Spec.from_json({"function": "m.f", "variables": [
    ...     {"name": "x", "shape": [], "dtype": "<f8", "direction": "in", "optic": {"kind": "global", "module": "os", "name": "x"}},
    ...     {"name": "result", "shape": [], "dtype": "<f8", "direction": "out", "optic": {"kind": "return", "key": None}}]})
    >>> [v.where for v in bind_by_signature(stored, ["x"], function="m.f", batched=False, what="model m").variables]
    ['arg(x)', 'return']
    """
    advice = (f"declare the variables of {function} (inputs=/outputs=), or call it once (e.g. in capture mode) "
              "before loading, so that its bindings come from the code")
    mine = {str(v.name): v for v in declared}
    outs = [v for v in stored.variables if v.direction == "out" and v.name not in mine]
    keys: list[Any] = []
    for v in outs:
        rec = v.recorded_optic
        key = rec.get("key") if rec is not None and rec.get("kind") == "return" else _NO_KEY
        if key is _NO_KEY and rec is None:  # a record without optics: the names inference gives
            key = _key_from_name(v, outs)
        if key is _NO_KEY or not (key is None or isinstance(key, str) or (isinstance(key, int) and not isinstance(key, bool))):
            raise SpecError(f"{what}: output variable {v.name!r} lives at {v.where or '?'}, not in the return value; {advice}")
        keys.append(key)
    ints = sorted(k for k in keys if isinstance(k, int))
    if (None in keys and len(keys) > 1) or (ints and len(ints) != len(keys)) or ints != list(range(len(ints))):
        raise SpecError(f"{what}: its output records {keys} do not describe one return value; {advice}")
    by_name = dict(zip((v.name for v in outs), keys))
    variables = []
    for v in stored.variables:
        if v.name in mine:
            d = mine[str(v.name)]
            infer = d.meta.get("infer") or ()
            meta = {k: x for k, x in d.meta.items() if k != "infer"}
            variables.append(replace(d, shape=v.shape if "shape" in infer else d.shape,
                                     dtype=v.dtype if "dtype" in infer else d.dtype, meta=meta))
            continue
        if v.direction == "out":
            optic: Optic = Return(by_name[v.name])
        elif v.ragged or v.name not in params or v.direction == "inout":
            why = ("is changed in place" if v.direction == "inout" else
                   "is a collection" if v.ragged else "is not an argument of the function")
            raise SpecError(f"{what}: input variable {v.name!r} ({v.where or v.direction}) {why}; "
                            f"phasm takes only arguments read by name from a file; {advice}")
        else:
            optic = Arg(str(v.name))
        variables.append(replace(v, optic=optic, recorded_optic=None))
    return Spec(function, tuple(variables), batched)


_NO_KEY = object()


def _key_from_name(v: Variable, outs: list[Variable]) -> Any:
    if len(outs) == 1 and v.name == "result":
        return None
    names = [o.name for o in outs]
    if names == [f"result{i}" for i in range(len(outs))]:
        return names.index(v.name)
    return v.name
