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

from typing import Any, Iterable

import numpy as np

from phasm.bindings.optics import Arg, CallFrame, Return
from phasm.bindings.spec import Spec, SpecError, Variable

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
    if batched:
        if arr.ndim == 0:
            raise SpecError(f"{what} {name!r} of a batched function must have a leading batch axis, got a scalar")
        return tuple(arr.shape[1:]), arr.dtype
    return tuple(arr.shape), arr.dtype


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
    mutated = set(mutated)
    skip = set(skip)
    variables: list[Variable] = []
    for name, value in frame.args.items():
        if name in skip:
            continue
        shape, dtype = describe_value(name, value, batched=batched, what="argument")
        direction = "inout" if name in mutated else "in"
        variables.append(Variable(name, shape, dtype, direction, Arg(name)))
    result = frame.result
    taken = {v.name for v in variables}
    if result is None:
        pass
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
    return Spec(function, tuple(variables), batched)


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
    from dataclasses import replace

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
