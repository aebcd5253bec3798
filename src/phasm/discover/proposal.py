"""The proposed binding spec of an inspection, as optic objects.

:func:`propose` turns an :class:`~phasm.discover.inspection.Inspection` into a
:class:`Proposal`: ordered input and output :class:`Declaration` s, each a
:class:`~phasm.bindings.spec.Variable` whose optic says where the value lives
(an argument, ``track.x0``, ``each(hits)[x, y]``, ``global:mod.NAME``, a getter
and setter pair), plus comments for what cannot be declared.  The objects are
what ``phasm.surrogate(inputs=..., outputs=...)`` takes; the code printed for
pasting is written from them (:mod:`phasm.discover.printer`), never the other
way round.

Example
-------
>>> import numpy as np
>>> from phasm.discover.analyze import inspect_function
>>> def relax(f, u):
...     u[1:-1] = 0.5 * (u[:-2] + u[2:]) - f[1:-1]
>>> p = propose(inspect_function(relax, [((np.ones(5), np.zeros(5)), {})]))
>>> [(d.name, d.variable.shape, d.variable.direction) for d in p.inputs + p.outputs]
[('f', (5,), 'in'), ('u', (5,), 'inout')]
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from phasm.bindings import Arg, Each, Global, Optic, Return, Spec, Variable
from phasm.bindings import Path as PathOptic
from phasm.discover.inspection import Finding, Inspection
from phasm.discover.paths import EACH, Path, render


@dataclass(frozen=True)
class Declaration:
    """One proposed model variable: its name, the variable (with its optic), and a comment for the reader."""

    name: str
    variable: Variable
    comment: str = ""
    enabled: bool = True  # False: offered commented out (a module constant that may not change)


@dataclass
class Proposal:
    """Proposed ``inputs=`` and ``outputs=`` declarations, with comments on what was left out."""

    function: str
    inputs: list[Declaration] = field(default_factory=list)
    outputs: list[Declaration] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    batched: bool = False

    def declarations(self) -> tuple[dict[str, Variable], dict[str, Variable]]:
        """``(inputs, outputs)`` dicts ready for ``phasm.surrogate(inputs=..., outputs=...)`` (enabled ones)."""
        return ({d.name: d.variable for d in self.inputs if d.enabled},
                {d.name: d.variable for d in self.outputs if d.enabled})

    def spec(self) -> Spec:
        """The proposal as a :class:`~phasm.bindings.spec.Spec` (raises ``SpecError`` if it is not complete)."""
        inputs, outputs = self.declarations()
        return Spec.from_declarations(self.function, inputs, outputs, batched=self.batched)


# -- shapes ----------------------------------------------------------------------------------


def shape_text(shape: tuple | None) -> str:
    """``scalar``, ``32x32``, ``nx3`` (``n``: a variable length), ``?`` when unknown."""
    if shape is None:
        return "?"
    if not shape:
        return "scalar"
    return "x".join("n" if s is None else str(s) for s in shape)


def _fixed(f: Finding) -> bool:
    return f.dtype is not None and f.shape is not None and all(s is not None for s in f.shape)


def _value(f: Finding, direction: str, optic: Optic | None = None) -> Variable:
    """A scalar or fixed-shape array variable, as ``phasm.Scalar``/``phasm.Array``/``phasm.attr`` build it."""
    return Variable(None, tuple(f.shape or ()), np.dtype(f.dtype or "float64"), direction, optic)


# -- names -----------------------------------------------------------------------------------


def _ident(text: str, taken: set[str]) -> str:
    name = re.sub(r"\W+", "_", text).strip("_") or "value"
    if name[0].isdigit():
        name = "_" + name
    out, i = name, 2
    while out in taken:
        out, i = f"{name}_{i}", i + 1
    taken.add(out)
    return out


def _name(path: tuple, full: str, taken: set[str]) -> str:
    """A variable name: the last attribute (``track.x0`` -> ``x0``), or the whole path when that is taken."""
    last = path[-1][1] if path[-1][0] == "attr" else None
    if isinstance(last, str) and not last.startswith("_") and re.sub(r"\W+", "_", last) not in taken:
        return _ident(last, taken)
    return _ident(full, taken)


# -- optics from discovered paths ------------------------------------------------------------


def _steps(path: Path) -> list[tuple[str, Any]] | None:
    """The attribute/item steps of a path for an optic (``None`` if a step cannot be written in a spec)."""
    steps = []
    for step in path[1:]:
        if step[0] == "attr" or (step[0] == "item" and isinstance(step[1], (int, str))):
            steps.append((step[0], step[1]))
        else:
            return None
    return steps


def _root(path: Path) -> Optic | None:
    root = path[0]
    if root[0] == "arg":
        return Arg(root[1])
    if root[0] == "global":
        return Global(root[1], root[2])
    if root[0] == "return":
        return Return()
    return None  # a closure cell: not reachable from a call


def _optic(path: Path, classes: tuple = ()) -> PathOptic | None:
    root, steps = _root(path), _steps(path)
    if root is None or steps is None:
        return None
    return PathOptic(root, steps, classes)


def _accessor(ins: Inspection, f: Finding) -> tuple[Path, str, str] | None:
    """``(holder path, getter, setter)`` when a get_X/set_X method pair of the holder reaches ``f``."""
    if len(f.path) < 2 or f.path[-1][0] != "attr" or f.path[0][0] != "arg":
        return None
    used = set(ins.methods.get(render(f.path[:-1]), ()))
    stem = f.path[-1][1].lstrip("_")
    get, set_ = f"get_{stem}", f"set_{stem}"
    if get in used or set_ in used:
        return f.path[:-1], get, set_
    return None


def _per_call(ins: Inspection, f: Finding) -> Finding:
    """For a batched function, arguments and results without their leading batch axis."""
    if not ins.batched or f.path[0][0] not in ("arg", "return") or not f.shape or EACH in f.path:
        return f
    return dataclasses.replace(f, shape=tuple(f.shape[1:]))


# -- the proposal ----------------------------------------------------------------------------


class _Builder:
    def __init__(self, ins: Inspection) -> None:
        self.ins = ins
        self.out = Proposal(ins.function, batched=ins.batched)
        self.taken: set[str] = set()

    def add(self, section: str, name: str, variable: Variable, comment: str = "", enabled: bool = True) -> None:
        getattr(self.out, section).append(Declaration(name, variable, comment, enabled))

    def comment(self, text: str) -> None:
        self.out.comments.append(text)

    def build(self) -> Proposal:
        ins = self.ins
        variables = [_per_call(ins, f) for f in ins.variables]
        groups: dict[tuple, list[Finding]] = {}
        for f in variables:
            if f.path[0][0] == "return" and EACH not in f.path:
                continue
            if EACH in f.path[1:] and f.kind not in ("unused", "scratch") and f.extension is None and (
                    f.path[0][0] != "arg" or f.passed):
                groups.setdefault(f.path[: f.path.index(EACH)], []).append(f)
                continue
            self.variable(f)
        for prefix, members in groups.items():
            self.collection(prefix, members)
        self.returns([f for f in variables if f.path[0][0] == "return" and EACH not in f.path])
        return self.out

    def variable(self, f: Finding) -> None:
        root = f.path[0]
        if f.kind == "unused":
            if len(f.path) == 1:
                self.comment(f"{f.name}: unused")
            return
        if f.kind == "scratch":
            return self.comment(f"{f.name}: scratch (written and restored; not part of the interface)")
        if root[0] == "arg" and not f.passed:
            return self.comment(f"{f.name}: default value used (not passed); a constant, not a model input")
        if root[0] == "closure":
            return self.comment(f"{f.name}: closure variable ({f.kind}); make it an argument to model it")
        if f.extension is not None:
            if f.kind == "in":
                return self.comment(f"{f.name}: opaque {f.extension} object (compiled extension), only read: "
                                    "pass the numbers it holds as arguments to model them")
            return self.comment(f"{f.name}: opaque {f.extension} object (compiled extension), changed by the call: "
                                "a model cannot reproduce that; pass the numbers it holds in and out as arguments")
        if f.dtype is None:
            return self.comment(f"{f.name}: {f.type_name or 'non-numeric'} ({f.kind}), not a numeric model variable: "
                                "keep it fixed, or declare an optic for its numeric parts")
        note = "" if f.source != "static" else "static analysis only: not executed by the example"
        section = "inputs" if f.kind == "in" else "outputs"
        if len(f.path) == 1 and root[0] == "arg":
            if not _fixed(f):
                return self.comment(f"{f.name}: {f.kind}, shape {shape_text(f.shape)} varies between examples: "
                                    "declare it by hand (phasm.each for a variable-length collection)")
            name = _ident(root[1], self.taken)
            if f.kind == "in":
                return self.add("inputs", name, _value(f, "in"), note)
            extra = "written only: its initial value is not used" if f.kind == "out" else note
            return self.add("outputs", name, _value(f, "inout"), extra)
        if not _fixed(f):
            return self.comment(f"{f.name}: {f.kind}, shape {shape_text(f.shape)} varies: declare it by hand")
        direction = {"in": "in", "out": "out", "inout": "inout"}[f.kind]
        accessor = _accessor(self.ins, f)
        if accessor is not None:
            holder, get, set_ = accessor
            optic = _optic(holder)
            if optic is not None:
                name = _ident(get[4:], self.taken)
                return self.add(section, name, _value(f, direction, optic.then("call", (get, set_))),
                                f"through {get}()/{set_}()")
        optic = _optic(f.path)
        if optic is None:
            return self.comment(f"{f.name}: {f.kind}, reached through keys a spec cannot name: declare it by hand")
        if root[0] == "global":
            rest = render((("arg", root[2]),) + f.path[1:])
            name = _name(f.path, rest, self.taken)
            if f.kind == "in":  # a module constant: the same in every call unless the program changes it
                return self.add("inputs", name, _value(f, "in", optic),
                                "module global, only read: uncomment if it changes between calls", enabled=False)
        else:
            name = _name(f.path, render(f.path), self.taken)
        self.add(section, name, _value(f, direction, optic), note)

    def collection(self, prefix: tuple, members: list[Finding]) -> None:
        """A variable-length collection: one ``phasm.each`` over the fields of its elements."""
        ins = self.ins
        fields = [m.path[len(prefix) + 1][1] for m in members
                  if len(m.path) == len(prefix) + 2 and m.path[len(prefix) + 1][0] == "attr"]
        declared = ins.fields.get(render(prefix + (EACH,)), [])
        fields.sort(key=lambda n: declared.index(n) if n in declared else len(declared))  # class order
        root = prefix[0]
        if EACH in prefix[1:] or root[0] == "closure":
            return self.comment(f"{members[0].name}: elements of a nested collection; no optic proposed")
        collection = _optic(prefix)
        if collection is None:
            return self.comment(f"{members[0].name}: reached through keys a spec cannot name: declare it by hand")
        if root[0] == "global":
            label = root[2]
        elif len(prefix) == 1 and root[0] == "return":
            label = "result"
        else:
            label = re.split(r"[.:\[]", render(prefix).rstrip("]'"))[-1]
        name = _ident(label, self.taken)
        kinds = {m.kind for m in members}
        dtypes = sorted({m.dtype for m in members if m.dtype})
        dtype = np.dtype(str(np.result_type(*dtypes)) if dtypes else "float64")
        cls = ins.class_refs.get(render(prefix + (EACH,))) if root[0] == "return" else None
        direction = "inout" if (kinds & {"in"} and kinds & {"out", "inout"}) or "inout" in kinds else (
            "in" if kinds <= {"in"} else "out")
        optic = Each(collection, fields or None, cls=cls, dtype=dtype)
        variable = Variable(None, optic.element_shape, dtype, direction, optic, ragged=True)
        if kinds <= {"in"}:
            self.add("inputs", name, variable, "variable length (ragged)")
        else:
            self.add("outputs", name, variable, f"variable length (ragged); {'/'.join(sorted(kinds))}")

    def returns(self, returns: list[Finding]) -> None:
        if len(returns) == 1 and len(returns[0].path) == 1:
            f = returns[0]
            if not _fixed(f):
                return self.comment(f"return: {f.type_name or 'shape ' + shape_text(f.shape)}, not a fixed-shape "
                                    "numeric value: declare the output by hand")
            return self.add("outputs", _ident("result", self.taken), _value(f, "out"))
        for f in returns:
            step = f.path[1]
            if not _fixed(f):
                self.comment(f"{f.name}: {f.type_name or 'shape ' + shape_text(f.shape)}: declare it by hand")
                continue
            if step[0] == "item" and isinstance(step[1], int) and len(f.path) == 2:
                self.add("outputs", _ident(f"result{step[1]}", self.taken), _value(f, "out"), f.name)
            elif step[0] == "item" and isinstance(step[1], str) and len(f.path) == 2:
                self.add("outputs", _ident(step[1], self.taken), _value(f, "out", Return(step[1])), f.name)
            else:
                cls = self.ins.class_refs.get(render(f.path[:-1])) if len(f.path) == 2 else None
                optic = _optic(f.path, (cls,) if cls else ())
                if optic is None:
                    self.comment(f"{f.name}: reached through keys a spec cannot name: declare it by hand")
                    continue
                label = step[1] if isinstance(step[1], str) else f"result{step[1]}"
                self.add("outputs", _ident(label, self.taken), _value(f, "out", optic), f.name)


def propose(ins: Inspection) -> Proposal:
    """The proposed declarations of an inspection (see the module docstring)."""
    return _Builder(ins).build()


__all__ = ["Declaration", "Proposal", "propose", "shape_text"]
