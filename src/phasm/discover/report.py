"""Renderers for an :class:`~phasm.discover.analyze.Inspection`: text report, spec code, JSON.

:func:`proposed_code` prints a ``@phasm.surrogate(inputs=..., outputs=...)``
decorator ready to paste: ``phasm.Scalar`` / ``phasm.Array`` for arguments
and return values, and the optics syntax for data elsewhere
(``phasm.attr("track.momentum.x")``, ``phasm.each("hits", fields=[...])``,
``phasm.glob("module.NAME")``).  :func:`proposed_spec` builds the same spec
as a :class:`~phasm.bindings.spec.Spec` object when every variable is an
argument or a return value.

Example
-------
>>> import numpy as np
>>> from phasm.discover.analyze import inspect_function
>>> def double(x):
...     return 2 * x
>>> print(proposed_code(inspect_function(double, [((np.ones(3),), {})])))
@phasm.surrogate(
    inputs={
        "x": phasm.Array((3,)),
    },
    outputs={
        "result": phasm.Array((3,)),
    },
)
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import numpy as np

from phasm.discover.analyze import Finding, Inspection
from phasm.discover.paths import EACH, render


def _shape_text(shape: tuple | None) -> str:
    if shape is None:
        return "?"
    if not shape:
        return "scalar"
    return "x".join("n" if s is None else str(s) for s in shape)


def _dtype_arg(dtype: str | None) -> str:
    return "" if dtype in (None, "float64") else repr(dtype)


def _fixed(f: Finding) -> bool:
    return f.dtype is not None and f.shape is not None and all(s is not None for s in f.shape)


def _args(f: Finding, direction: str | None, *, dtype_kw: bool) -> list[str]:
    args = []
    if f.shape:
        args.append(repr(tuple(f.shape)))
    if _dtype_arg(f.dtype):
        args.append(f"dtype={_dtype_arg(f.dtype)}" if dtype_kw else _dtype_arg(f.dtype))
    if direction:
        args.append(f"direction={direction!r}")
    return args


def _decl(f: Finding, direction: str | None = None, optic: str | None = None) -> str | None:
    """``phasm.Scalar()`` / ``phasm.Array(...)`` for a fixed-shape numeric value, else ``None``."""
    if not _fixed(f):
        return None
    args = _args(f, direction, dtype_kw=False)
    if optic:
        args.append(f"optic={optic}")
    return f"phasm.{'Array' if f.shape else 'Scalar'}({', '.join(args)})"


def _optic_decl(helper: str, path_text: str, f: Finding, direction: str | None) -> str:
    """``phasm.attr("p.x", (3,), dtype=..., direction=...)`` and the like."""
    args = [f'"{path_text}"'] + _args(f, direction, dtype_kw=True)
    return f"phasm.{helper}({', '.join(args)})"


def _name(path: tuple, full: str, taken: set[str]) -> str:
    """A variable name: the last attribute (``track.x0`` -> ``x0``), or the whole path when that is taken."""
    last = path[-1][1] if path[-1][0] == "attr" else None
    if isinstance(last, str) and not last.startswith("_") and re.sub(r"\W+", "_", last) not in taken:
        return _ident(last, taken)
    return _ident(full, taken)


def _ident(text: str, taken: set[str]) -> str:
    name = re.sub(r"\W+", "_", text).strip("_") or "value"
    if name[0].isdigit():
        name = "_" + name
    out, i = name, 2
    while out in taken:
        out, i = f"{name}_{i}", i + 1
    taken.add(out)
    return out


def _accessor(ins: Inspection, f: Finding) -> tuple[str, str, str] | None:
    """``(holder path, getter, setter)`` when a get_X/set_X method pair of the holder reaches ``f``."""
    if len(f.path) < 2 or f.path[-1][0] != "attr" or f.path[0][0] != "arg":
        return None
    holder = render(f.path[:-1])
    used = set(ins.methods.get(holder, ()))
    stem = f.path[-1][1].lstrip("_")
    get, set_ = f"get_{stem}", f"set_{stem}"
    if get in used or set_ in used:
        return holder, get, set_
    return None


def _per_call(ins: Inspection, f: Finding) -> Finding:
    """For a batched function, arguments and results without their leading batch axis."""
    if not ins.batched or f.path[0][0] not in ("arg", "return") or not f.shape or EACH in f.path:
        return f
    return dataclasses.replace(f, shape=tuple(f.shape[1:]))


def _plan(ins: Inspection) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]], list[str]]:
    """(inputs, outputs, comments): declarations as (name, code, trailing comment)."""
    inputs: list[tuple[str, str, str]] = []
    outputs: list[tuple[str, str, str]] = []
    comments: list[str] = []
    taken: set[str] = set()
    groups: dict[tuple, list[Finding]] = {}
    variables = [_per_call(ins, f) for f in ins.variables]
    returns = [f for f in variables if f.path[0][0] == "return" and EACH not in f.path]
    for f in variables:
        root = f.path[0]
        if root[0] == "return" and EACH not in f.path:
            continue
        if f.kind == "unused":
            if len(f.path) == 1:
                comments.append(f"{f.name}: unused")
            continue
        if f.kind == "scratch":
            comments.append(f"{f.name}: scratch (written and restored; not part of the interface)")
            continue
        if root[0] == "arg" and not f.passed:
            comments.append(f"{f.name}: default value used (not passed); a constant, not a model input")
            continue
        if EACH in f.path[1:]:
            i = f.path.index(EACH)
            groups.setdefault(f.path[:i], []).append(f)
            continue
        if root[0] == "closure":
            comments.append(f"{f.name}: closure variable ({f.kind}); make it an argument to model it")
            continue
        if f.dtype is None:
            comments.append(f"{f.name}: {f.type_name or 'non-numeric'} ({f.kind}), not a numeric model variable: "
                            "keep it fixed, or declare an optic for its numeric parts")
            continue
        note = "" if f.source != "static" else "static analysis only: not executed by the example"
        if len(f.path) == 1 and root[0] == "arg":
            if not _fixed(f):
                comments.append(f"{f.name}: {f.kind}, shape {_shape_text(f.shape)} varies between examples: "
                                "declare it by hand (phasm.each for a variable-length collection)")
                continue
            name = _ident(root[1], taken)
            if f.kind == "in":
                inputs.append((name, _decl(f) or "", note))
            else:
                extra = "written only: its initial value is not used" if f.kind == "out" else note
                outputs.append((name, _decl(f, "inout") or "", extra))
            continue
        if not _fixed(f):
            comments.append(f"{f.name}: {f.kind}, shape {_shape_text(f.shape)} varies: declare it by hand")
            continue
        direction = {"in": None, "out": None, "inout": "inout"}[f.kind]
        accessor = _accessor(ins, f)
        if accessor is not None:
            holder, get, set_ = accessor
            code = f'phasm.setter("{holder}", get="{get}", set="{set_}"' + "".join(
                ", " + a for a in _args(f, direction, dtype_kw=True)) + ")"
            name = _ident(get[4:], taken)
            (inputs if f.kind == "in" else outputs).append((name, code, f"through {get}()/{set_}()"))
            continue
        if root[0] == "global":
            rest = "".join(f".{s[1]}" if s[0] == "attr" else f"[{s[1]!r}]" for s in f.path[1:])
            text = f"{root[1]}.{root[2]}" if not rest else f"{root[1]}:{root[2]}{rest}"
            code = _optic_decl("glob", text, f, direction)
            name = _name(f.path, root[2] + rest, taken)
            if f.kind == "in":  # a module constant: the same in every call unless the program changes it
                inputs.append(("#" + name, code, "module global, only read: uncomment if it changes between calls"))
                continue
        else:
            text = render(f.path)
            code = _optic_decl("attr", text, f, direction)
            name = _name(f.path, text, taken)
        (inputs if f.kind == "in" else outputs).append((name, code, note))
    for prefix, members in groups.items():
        fields = [m.path[len(prefix) + 1][1] for m in members
                  if len(m.path) == len(prefix) + 2 and m.path[len(prefix) + 1][0] == "attr"]
        declared = ins.fields.get(render(prefix + (EACH,)), [])
        fields.sort(key=lambda n: declared.index(n) if n in declared else len(declared))  # class order
        root = prefix[0]
        if EACH in prefix[1:] or root[0] == "closure":
            comments.append(f"{members[0].name}: elements of a nested collection; no optic proposed")
            continue
        if root[0] == "global":
            rest = render((("arg", root[2]),) + prefix[1:])
            base = f"global:{root[1]}:{rest}"
        else:
            base = render(prefix)
        label = root[2] if root[0] == "global" else re.split(r"[.:\[]", base.rstrip("]'"))[-1]
        name = _ident("result" if label == "return" else label, taken)
        kinds = {m.kind for m in members}
        dtypes = sorted({m.dtype for m in members if m.dtype})
        code = f'phasm.each("{base}"' + (f", fields={fields!r}" if fields else "")
        common = str(np.result_type(*dtypes)) if dtypes else "float64"
        if common != "float64":
            code += f", dtype={common!r}"
        if root[0] == "return" and ins.classes.get(render(prefix + (EACH,))):
            code += f", cls={ins.classes[render(prefix + (EACH,))]}"
        if kinds & {"in"} and kinds & {"out", "inout"} or "inout" in kinds:
            code += ", direction='inout'"
        code += ")"
        comment = "variable length (ragged)"
        if kinds <= {"in"}:
            inputs.append((name, code, comment))
        else:
            outputs.append((name, code, comment + f"; {'/'.join(sorted(kinds))}"))
    if len(returns) == 1 and len(returns[0].path) == 1:
        f = returns[0]
        decl = _decl(f)
        if decl is None:
            comments.append(f"return: {f.type_name or 'shape ' + _shape_text(f.shape)}, not a fixed-shape "
                            "numeric value: declare the output by hand")
        else:
            outputs.append((_ident("result", taken), decl, ""))
    else:
        for f in returns:
            step = f.path[1]
            if step[0] == "item" and isinstance(step[1], int):
                name = _ident(f"result{step[1]}", taken)
                decl = _decl(f)
            elif step[0] == "item":
                name = _ident(str(step[1]), taken)
                decl = _decl(f, optic=f"phasm.Return({step[1]!r})")
            else:
                name = _ident(step[1], taken)
                decl = _optic_decl("attr", render(f.path), f, None) if _fixed(f) else None
                cls = ins.classes.get(render(f.path[:-1]))
                if decl and cls and len(f.path) == 2:
                    decl = decl[:-1] + f", cls={cls})"
            if decl is None:
                comments.append(f"{f.name}: {f.type_name or 'shape ' + _shape_text(f.shape)}: declare it by hand")
            else:
                outputs.append((name, decl, f.name))
    return inputs, outputs, comments


def proposed_code(ins: Inspection) -> str:
    """The proposed ``@phasm.surrogate(...)`` decorator, as code to paste."""
    inputs, outputs, comments = _plan(ins)
    lines = []
    stochastic = "nondeterministic" in ins.flags or "random" in ins.flags
    if stochastic:
        why = "two runs on the same input differ" if "nondeterministic" in ins.flags else "it draws random numbers"
        lines.append(f"# stochastic ({why}): a regression surrogate would learn only the mean; stochastic=True")
        lines.append("# trains a generative one whose answers are samples, gated on distributions.")
    unsafe = [f for f in ins.flag_details if f.flag not in ("nondeterministic", "raises", "random")]
    for f in unsafe:
        lines.append(f"# WARNING: {f.flag}: {f.what} at {f.where}; a model will not do this")
    for c in comments:
        lines.append(f"# {c}")
    lines.append("@phasm.surrogate(")
    for label, decls in (("inputs", inputs), ("outputs", outputs)):
        lines.append(f"    {label}={{")
        for name, code, comment in decls:
            hash_ = "# " if name.startswith("#") else ""
            lines.append(f'        {hash_}"{name.lstrip("#")}": {code},' + (f"  # {comment}" if comment else ""))
        lines.append("    },")
    if ins.batched:
        lines.append("    batched=True,")
    if stochastic:
        lines.append("    stochastic=True,")
    lines.append(")")
    return "\n".join(lines)


def proposed_declarations(ins: Inspection) -> tuple[dict[str, Any], dict[str, Any]]:
    """The proposal evaluated: ``(inputs, outputs)`` dicts to pass to ``phasm.surrogate``.

    Names in the code (``cls=Fit``) resolve in the function's module.  Raises
    if the proposal cannot be evaluated (e.g. a shape that must be declared by hand).
    """
    import sys

    import phasm

    inputs, outputs, _ = _plan(ins)
    module = sys.modules.get(ins.module)
    namespace = {**(vars(module) if module is not None else {}), "phasm": phasm}
    ins_decl = {n: eval(c, namespace) for n, c, _ in inputs if not n.startswith("#")}  # noqa: S307 - our code
    outs_decl = {n: eval(c, namespace) for n, c, _ in outputs}  # noqa: S307
    return ins_decl, outs_decl


def proposed_spec(ins: Inspection) -> Any:
    """The proposal as a :class:`~phasm.bindings.spec.Spec`, or ``None`` if it cannot be built as it stands."""
    from phasm.bindings.spec import Spec

    try:
        inputs, outputs = proposed_declarations(ins)
        return Spec.from_declarations(ins.function, inputs, outputs, batched=ins.batched)
    except Exception:  # noqa: BLE001 - unknown shapes, no outputs, names that do not resolve
        return None


def render_text(ins: Inspection) -> str:
    """A readable plain-text report."""
    out = [f"interface of {ins.function}  ({ins.examples} example call(s), "
           f"{ins.seconds * 1e3:.3g} ms traced per call)"]
    if ins.calls:
        out.append("follows calls into: " + ", ".join(ins.calls))
    rows = [("kind", "path", "shape", "dtype", "seen by", "notes")]
    for f in ins.variables:
        where = sorted(set(f.where))
        where_text = " ".join(where[:3]) + (f" (+{len(where) - 3} more)" if len(where) > 3 else "")
        rows.append((f.kind, f.name, _shape_text(f.shape) if f.dtype else (f.type_name or "?"), f.dtype or "-",
                     f.source, "; ".join(f.notes + ([where_text] if where else []))))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        out.append("  " + "  ".join(r[i].ljust(widths[i]) for i in range(5)) + "  " + r[5])
    out.append("flags: " + (", ".join(ins.flags) if ins.flags else "none (looks safe to replace)"))
    for f in ins.flag_details:
        out.append(f"  {f.flag}: {f.what} at {f.where} [{f.source}]")
    if ins.disagreements:
        out.append("static and dynamic analysis disagree:")
        out.extend(f"  {d}" if len(d) < 240 else f"  {d[:237]}..." for d in ins.disagreements)
    if ins.notes:
        out.append("notes:")
        out.extend(f"  {n}" for n in ins.notes)
    out.append("")
    out.append("proposed spec:")
    out.append(proposed_code(ins))
    return "\n".join(out)


def render_json(ins: Inspection, indent: int | None = 2) -> str:
    """The inspection as JSON: ``{"variables": [...], "flags": [...], ...}``."""
    return json.dumps(ins.to_json(), indent=indent, default=str)
