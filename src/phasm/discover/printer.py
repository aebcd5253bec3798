"""Python code for proposed declarations, written from the variable and optic objects.

:func:`declaration_code` prints the call that builds a
:class:`~phasm.bindings.spec.Variable` with the ``phasm`` helpers a user
would write by hand: ``phasm.Scalar()``, ``phasm.Array((32, 32))``,
``phasm.attr("track.x0")``, ``phasm.glob("heat.CHECK_EVERY", dtype='int64')``,
``phasm.setter("step", get="get_edep", set="set_edep")``,
``phasm.each("event.hits", fields=['x', 'y', 'z'])``.  Evaluating the printed
code gives back an equal variable (the tests check this); the printer only
reads objects, it never builds code to evaluate.

Example
-------
>>> from phasm.bindings import Array, attr, each
>>> declaration_code(Array((3, 3), direction="inout"), "outputs")
"phasm.Array((3, 3), direction='inout')"
>>> declaration_code(attr("p.vx", direction="inout"), "outputs")
'phasm.attr("p.vx", direction=\\'inout\\')'
>>> declaration_code(each("hits", fields=["x", "y"]), "inputs")
'phasm.each("hits", fields=[\\'x\\', \\'y\\'])'
"""

from __future__ import annotations

from typing import Any

from phasm.bindings import Arg, Each, Global, Optic, Return, Variable
from phasm.bindings import Path as PathOptic
from phasm.errors import OpticError

# What a declaration without ``direction=`` means in each section (``phasm.surrogate`` reads "in" as "out"
# in ``outputs=``).
_DEFAULT_DIRECTION = {"inputs": "in", "outputs": "out"}


def _quoted(text: str) -> str:
    return f'"{text}"' if '"' not in text and "\\" not in text else repr(text)


def _class_name(ref: type | str | None) -> str | None:
    """A class -> ``Outer.Cls``, its qualified name (the name resolves in the function's module)."""
    if ref is None or isinstance(ref, str):
        return ref
    return ref.__qualname__


def _step_text(step: tuple[str, Any]) -> str:
    op, key = step
    if op == "attr":
        return f".{key}"
    if op == "item":
        return f"[{key!r}]"
    raise OpticError(f"a {op!r} step has no text form")


def path_text(optic: PathOptic, *, global_form: str = "glob") -> str:
    """A path as the string the ``phasm`` helpers parse.

    ``global_form``: ``"glob"`` writes ``mod.NAME`` / ``mod:NAME.attr`` (for
    ``phasm.glob``); ``"path"`` writes ``global:mod:NAME...`` (for ``phasm.each``).
    """
    root, steps = optic.root, "".join(_step_text(s) for s in optic.steps)
    if isinstance(root, Arg):
        return root.name + steps
    if isinstance(root, Return):
        if root.key is not None:
            raise OpticError(f"a path rooted at return[{root.key!r}] has no text form; root it at 'return'")
        return "return" + steps
    if isinstance(root, Global):
        if global_form == "path":
            return f"global:{root.module}:{root.name}{steps}"
        return f"{root.module}.{root.name}" if not steps else f"{root.module}:{root.name}{steps}"
    raise OpticError(f"no text form for a path rooted at {root!r}")


def _shape_dtype(var: Variable, *, dtype_kw: bool) -> list[str]:
    args = []
    if var.shape:
        args.append(repr(tuple(var.shape)))
    if var.dtype.name != "float64":
        args.append(f"dtype={var.dtype.name!r}" if dtype_kw else repr(var.dtype.name))
    return args


def _direction(var: Variable, section: str) -> list[str]:
    if var.direction == _DEFAULT_DIRECTION[section] or (section == "outputs" and var.direction == "in"):
        return []
    return [f"direction={var.direction!r}"]


def declaration_code(var: Variable, section: str = "inputs") -> str:
    """The ``phasm`` call that declares ``var`` in ``inputs=`` or ``outputs=`` (``section``)."""
    if section not in _DEFAULT_DIRECTION:
        raise ValueError(f"section must be 'inputs' or 'outputs', got {section!r}")
    optic = var.optic
    if isinstance(optic, Each):
        return _each_code(var, optic, section)
    if optic is None or isinstance(optic, (Arg, Return)):
        return _value_code(var, section, optic)
    if isinstance(optic, PathOptic):
        if optic.steps and optic.steps[-1][0] == "call":
            get, set_ = optic.steps[-1][1]
            holder = PathOptic(optic.root, optic.steps[:-1])
            args = [_quoted(path_text(holder)), f'get="{get}"', f'set="{set_}"']
            return f"phasm.setter({', '.join(args + _shape_dtype(var, dtype_kw=True) + _direction(var, section))})"
        helper = "glob" if isinstance(optic.root, Global) else "attr"
        args = [_quoted(path_text(optic))] + _shape_dtype(var, dtype_kw=True) + _direction(var, section)
        cls = _class_name(optic.classes[0]) if optic.classes and len(optic.steps) == 1 else None
        if cls is not None:
            args.append(f"cls={cls}")
        return f"phasm.{helper}({', '.join(args)})"
    raise OpticError(f"no declaration code for an optic of kind {type(optic).__name__}")


def _value_code(var: Variable, section: str, optic: Optic | None) -> str:
    args = _shape_dtype(var, dtype_kw=False) + _direction(var, section)
    if optic is not None:
        args.append(f"optic=phasm.{type(optic).__name__}({_optic_arg(optic)})")
    return f"phasm.{'Array' if var.shape else 'Scalar'}({', '.join(args)})"


def _optic_arg(optic: Optic) -> str:
    if isinstance(optic, Arg):
        return repr(optic.name)
    if isinstance(optic, Return):
        return "" if optic.key is None else repr(optic.key)
    raise OpticError(f"no declaration code for an optic of kind {type(optic).__name__}")


def _each_code(var: Variable, optic: Each, section: str) -> str:
    args = [_quoted(path_text(optic.collection, global_form="path"))]
    if optic.fields is not None:
        args.append(f"fields={list(optic.fields)!r}")
    if optic.dtype.name != "float64":
        args.append(f"dtype={optic.dtype.name!r}")
    if optic.max_len is not None:
        args.append(f"max_len={optic.max_len}")
    if optic.cls is not None and optic.cls != "dict":
        args.append(f"cls={_class_name(optic.cls)}")
    args += _direction(var, section)
    return f"phasm.each({', '.join(args)})"


__all__ = ["declaration_code", "path_text"]
