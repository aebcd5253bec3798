"""Interface discovery: combine static and dynamic analysis into one finding per path.

:func:`inspect_function` is the entry point behind ``phasm inspect``: static
analysis of the source (all branches), one traced call per example (what
really happens, with shapes), a purity check, and the merge of the three into
an :class:`Inspection` with a proposed binding spec.

Example
-------
>>> import numpy as np
>>> def relax(f, u):
...     u[1:-1] = 0.5 * (u[:-2] + u[2:]) - f[1:-1]
>>> ins = inspect_function(relax, [((np.ones(5), np.zeros(5)), {})])
>>> [(v.name, v.kind) for v in ins.variables]
[('f', 'in'), ('u', 'inout')]
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable

import numpy as np

from phasm.discover.dynamic import DynamicResult, trace_call
from phasm.discover.effects import (below_opaque, locate_random_draws, opaque_flags, opaque_roots,
                                    stochastic_suggestion)
from phasm.discover.inspection import Finding, FlagFinding, Inspection
from phasm.discover.paths import EACH, Access, Path, normalized, render
from phasm.discover.scope import in_scope_predicate
from phasm.discover.static import StaticResult, analyze_static
from phasm.errors import TargetError


_ARRAY_METADATA = {"shape", "ndim", "dtype", "size", "T", "strides", "itemsize", "nbytes", "flags", "base"}


def inspect_function(
    fn: Callable[..., Any],
    examples: Iterable[tuple[tuple, dict[str, Any]]],
    *,
    depth: int = 2,
    purity: bool = True,
    batched: bool = False,
) -> Inspection:
    """Discover the interface of ``fn`` from its source and from calls on ``examples``.

    ``examples``: ``(args, kwargs)`` pairs, each one call.  ``depth``: how
    many levels of called functions (within the user's package) static
    analysis follows.  ``purity``: run each example twice more, untraced, to
    detect nondeterminism.  ``batched``: the function is vectorised over a
    leading batch axis; the proposal declares per-call shapes and ``batched=True``.
    """
    unwrapped = inspect.unwrap(fn)
    if inspect.ismethod(unwrapped):  # a bound method: its instance is the first argument
        examples = [((unwrapped.__self__, *args), kwargs) for args, kwargs in examples]
    target = getattr(unwrapped, "__func__", unwrapped)
    if not inspect.isfunction(target):
        raise TargetError(f"{fn!r} is not a Python function: phasm inspect needs its code (a builtin or "
                        "C-extension function can only be bound by hand)")
    in_scope = in_scope_predicate(target)
    static = analyze_static(target, depth=depth, in_scope=in_scope)
    runs: list[DynamicResult] = []
    for args, kwargs in examples:
        runs.append(trace_call(target, tuple(args), dict(kwargs), globals_used=static.globals_used,
                               in_scope=in_scope, purity=purity))
    ins = combine(static, runs)
    ins.batched = batched
    return ins


def combine(static: StaticResult, runs: list[DynamicResult]) -> Inspection:
    """Merge static findings and dynamic runs into one :class:`Inspection`."""
    merged: dict[Path, Access] = {}
    for run in runs:
        for path, acc in run.accesses.items():
            if path in merged:
                merged[path].merge(acc)
            else:
                merged[path] = Access(path)
                merged[path].merge(acc)
    passed = set.intersection(*(set(r.passed) for r in runs)) if runs else set(static.params)
    opaque = opaque_roots(static, runs)  # objects of compiled extensions: reported whole, never field by field
    leaves = [p for p in _leaves(merged) if not below_opaque(p, opaque)]
    static_paths = _static_kinds(static)
    dyn_norm = {normalized(p) for p in merged}
    findings: list[Finding] = []
    disagreements: list[str] = []
    for path in leaves:
        acc = merged[path]
        f = _finding(acc)
        f.passed = path[0][0] != "arg" or path[0][1] in passed
        if not f.passed:
            f.notes.append("default value, not passed by the example")
        norm = normalized(path)
        hits = [k for k in static_paths if k == norm or norm[: len(k)] == k or k[: len(norm)] == norm]
        if hits:
            f.source = "both"
            for k in hits:
                f.where.extend(sorted(static_paths[k][1]))
        static_kinds = {static_paths[k][0] for k in hits}
        if f.kind == "unused" and static_kinds:
            f.kind = "in" if static_kinds == {"in"} else "inout"
            f.notes.append("used only in code the example did not execute")
            disagreements.append(f"{f.name}: the example never used it, static analysis finds a use at "
                                 f"{', '.join(sorted(set(f.where)))}; classified {f.kind}")
        if f.kind in ("out", "inout") and path[0][0] != "return" and not any(
            static_paths[k][0] in ("out", "inout") for k in hits
        ) and norm not in opaque:  # an extension object changed: reported by its own flag
            disagreements.append(f"{f.name}: written at run time, but static analysis found no write "
                                 "(a method call or dynamic attribute access?)")
        findings.append(f)
    value_leaves = {normalized(p) for p, a in merged.items() if a.dtypes}
    for norm, (kind, wheres) in static_paths.items():
        if any(d == norm or d[: len(norm)] == norm for d in dyn_norm):
            continue
        if any(norm[: len(v)] == v for v in value_leaves) or (len(norm) > 1 and norm[-1][1] in _ARRAY_METADATA):
            continue  # metadata of an array (u.shape, f.ndim): not data
        if below_opaque(norm, opaque):
            continue  # gas.TP on an extension object: reported with the object
        f = Finding(norm, kind, source="static", where=sorted(wheres),
                    notes=["not executed by the example(s)"])
        findings.append(f)
        disagreements.append(f"{f.name}: static analysis finds a {'write' if kind != 'in' else 'read'} at "
                             f"{', '.join(sorted(wheres))}, not executed by the example(s) (a branch not taken?)")
    flags = opaque_flags(opaque, findings)
    findings.sort(key=_order(static.params))
    seen: set[tuple[str, str]] = set()
    for flag, what, where in static.unsafe:
        if (flag, what) not in seen:
            seen.add((flag, what))
            flags.append(FlagFinding(flag, what, where, "static"))
    for run in runs:
        for flag, what, where in run.flags:
            match = [known for known in flags if known.flag == flag and (known.where == where or flag == "random")]
            if match:
                for known in match:
                    known.source = "both"
            elif (flag, what) not in seen:
                seen.add((flag, what))
                flags.append(FlagFinding(flag, what, where, "dynamic"))
        if run.nondeterministic:
            flags.append(FlagFinding("nondeterministic", ", ".join(run.nondeterministic),
                                     "two runs on copies of the same input differ", "dynamic"))
        if run.error:
            flags.append(FlagFinding("raises", run.error, "the example call", "dynamic"))
    locate_random_draws(opaque, flags)
    seconds = min((r.seconds for r in runs), default=0.0)
    notes = list(dict.fromkeys(static.notes + [n for r in runs for n in r.notes]))
    methods = {render(p): sorted(a.methods) for p, a in merged.items() if a.methods}
    classes = {render(p): a.type_name for p, a in merged.items() if a.expanded and a.type_name}
    class_refs = {render(p): a.type_ref for p, a in merged.items() if a.expanded and a.type_ref}
    fields = {render(p): list(a.fields) for p, a in merged.items() if a.fields}
    suggestion = stochastic_suggestion(flags)
    return Inspection(static.function, static.params, findings, flags, disagreements, notes, len(runs), seconds,
                      [r.error for r in runs if r.error], list(static.calls), methods, classes, static.module,
                      fields=fields, class_refs=class_refs, suggestions=[suggestion] if suggestion else [])


def _leaves(merged: dict[Path, Access]) -> list[Path]:
    out = []
    for path, acc in merged.items():
        has_children = any(len(q) > len(path) and q[: len(path)] == path for q in merged)
        if has_children and (acc.expanded or not (acc.written or (acc.changed and acc.new_object))):
            continue
        out.append(path)
    return out


def _finding(acc: Access) -> Finding:
    ragged = EACH in acc.path[1:] or bool(acc.lengths) or len(acc.shapes) > 1
    shape: tuple | None = None
    if acc.shapes:
        shapes = sorted(acc.shapes, key=len)
        base = shapes[0]
        if len(acc.shapes) > 1:  # differs between examples: variable-length along the differing axes
            base = tuple(s if all(len(o) == len(base) and o[i] == s for o in shapes) else None
                         for i, s in enumerate(base))
        n_each = sum(1 for s in acc.path[1:] if s == EACH)
        shape = (None,) * n_each + tuple(base)
    dtype = str(np.result_type(*sorted(acc.dtypes))) if acc.dtypes else None
    notes = list(acc.notes)
    if acc.methods:
        notes.append("methods called: " + ", ".join(sorted(acc.methods)))
    return Finding(acc.path, acc.kind, shape, dtype, ragged, acc.type_name, "dynamic", sorted(acc.lines), notes)


def _static_kinds(static: StaticResult) -> dict[tuple, tuple[str, set[str]]]:
    out: dict[tuple, tuple[str, set[str]]] = {}
    for table, kind in ((static.reads, "in"), (static.writes, "out")):
        for path, wheres in table.items():
            norm = normalized(path)
            old = out.get(norm)
            if old is None:
                out[norm] = (kind, set(wheres))
            else:
                k = old[0] if old[0] == kind else "inout"
                out[norm] = (k, old[1] | set(wheres))
    # A read of a parent path (e.g. `track` passed along) is structural when a deeper path is known.
    for norm in list(out):
        if out[norm][0] == "in" and any(len(o) > len(norm) and o[: len(norm)] == norm for o in out):
            del out[norm]
    return out


def _order(params: list[str]) -> Callable[[Finding], tuple]:
    rank = {"arg": 0, "closure": 1, "global": 2, "return": 3}

    def key(f: Finding) -> tuple:
        root = f.path[0]
        idx = params.index(root[1]) if root[0] == "arg" and root[1] in params else 0
        return (rank.get(root[0], 9), idx)  # then first-seen order (stable sort): fields in access order

    return key
