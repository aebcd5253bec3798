"""Dynamic interface analysis: run the function on an example and watch its data.

One traced call on deep copies of the example arguments, of the module
globals the function refers to, and of its closure cells:

- arguments, globals and closure values are replaced by traced stand-ins
  (:mod:`phasm.discover.tracing`) that log reads and writes by path, down
  through attributes, items and list elements;
- a ``sys.settrace`` line tracer on the user's code (the function's package)
  logs, from the bytecode of each executed line, loads of parameters
  (``LOAD_FAST``), of globals (``LOAD_GLOBAL``), global stores
  (``STORE_GLOBAL``) and closure loads/stores;
- well-known unsafe functions (``print``, ``open``, clocks, ``subprocess``,
  sockets, ...) are wrapped for the duration of the call, and the global
  random states (``random``, ``numpy.random``) compared before and after, to
  log what makes the function unsafe to replace;
- before/after deep snapshots are compared, which catches every net change
  (in-place numpy writes included) even where no hook fired.

The purity check runs the untraced function twice on fresh copies and
compares everything it returns and leaves behind.  The caller's own data and
module globals are never modified: every run works on copies, and the
original global bindings are put back afterwards.

Example
-------
>>> import numpy as np
>>> def scale(a, k):
...     a *= k
>>> res = trace_call(scale, (np.ones(3), 2.0), {})
>>> sorted((render(p), acc.kind) for p, acc in res.accesses.items())
[('a', 'inout'), ('k', 'in')]
"""

from __future__ import annotations

import inspect
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from phasm.discover.linetrace import LineTracer
from phasm.discover.paths import EACH, Access, Path, is_numeric, is_scalar, render
from phasm.discover.snapshot import MISSING as _MISSING
from phasm.discover.snapshot import (Roots, base_type, copy_state, diff, rng_states, root_value, same_state, set_rng_states,
                                     state_diff, values_at)
from phasm.discover.scope import in_scope_predicate
from phasm.discover.tracing import Instrumenter, Recorder, fields_of
from phasm.discover.watch import OpaqueObservation, OpaqueWatch
from phasm.errors import TargetError


@dataclass
class DynamicResult:
    """What one traced call (and the purity runs) showed."""

    accesses: dict[Path, Access]
    passed: list[str]
    defaults: dict[str, Any]
    flags: list[tuple[str, str, str]] = field(default_factory=list)  # (flag, what, where)
    nondeterministic: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    opaque: dict[Path, OpaqueObservation] = field(default_factory=dict)  # objects of compiled extensions


def _call(fn: Any, sig: inspect.Signature, arguments: dict[str, Any]) -> Any:
    ba = inspect.BoundArguments(sig, dict(arguments))  # type: ignore[arg-type]
    return fn(*ba.args, **ba.kwargs)


def trace_call(
    fn: Callable[..., Any],
    args: tuple = (),
    kwargs: dict[str, Any] | None = None,
    *,
    globals_used: Iterable[tuple[str, str]] = (),
    in_scope: Callable[[str], bool] | None = None,
    purity: bool = True,
) -> DynamicResult:
    """Trace one call ``fn(*args, **kwargs)`` and classify every path it touched.

    ``globals_used``: ``(module, name)`` pairs to watch (static analysis finds
    them; globals loaded but not listed are still seen, without detail).
    ``purity``: also run the plain function twice and compare the results.
    """
    fn = inspect.unwrap(fn)
    fn = getattr(fn, "__func__", fn)
    kwargs = kwargs or {}
    if inspect.isgeneratorfunction(fn) or inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise TargetError(f"{fn.__qualname__} is a generator or coroutine function: inspect the function "
                        "that consumes it, a surrogate replaces plain calls")
    sig = inspect.signature(fn)
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as exc:
        raise TargetError(f"example arguments do not fit {fn.__qualname__}{sig}: {exc}") from None
    passed = list(bound.arguments)
    bound.apply_defaults()
    defaults = {k: v for k, v in bound.arguments.items() if k not in passed}
    in_scope = in_scope or in_scope_predicate(fn)
    roots = Roots(fn, bound.arguments, globals_used)
    pristine = roots.snapshot()
    result = DynamicResult({}, passed, defaults)

    # The traced run, on instrumented copies.
    rec = Recorder()
    inst = Instrumenter(rec)
    work = roots.snapshot()
    watch = OpaqueWatch(work)  # before instrumenting: objects of compiled extensions are watched, not traced
    originals = roots.uncopied(work)  # could not be copied: run on them as they are, never instrumented
    for key in sorted(render(k) if isinstance(k, tuple) else k for k in originals):
        result.notes.append(f"{key}: cannot be deep-copied: inspection ran on the object itself "
                            "(the call may have changed it)")
    traced_args = {n: (inst.instrument(v, (("arg", n),)) if n not in originals else v)
                   for n, v in work["args"].items()}
    work["globals"] = {p: (inst.instrument(v, p) if v is not _MISSING and p not in originals else v)
                       for p, v in work["globals"].items()}
    work["cells"] = {p: (inst.instrument(v, p) if p not in originals else v) for p, v in work["cells"].items()}
    tracer = LineTracer(rec, fn, in_scope, traced_args)
    ret: Any = None
    rng_before = rng_states()
    t0 = time.perf_counter()
    previous_trace = sys.gettrace()
    try:
        roots.install(work)
        tracer.intercept()
        sys.settrace(tracer.on_call)
        with rec:
            ret = _call(fn, sig, traced_args)
    except Exception as exc:  # noqa: BLE001 - the example failing is a finding, not a crash of inspect
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        sys.settrace(previous_trace)
        tracer.release()
        result.seconds = time.perf_counter() - t0
        final = roots.collect()
        roots.restore()
        inst.undo()
    result.flags = tracer.flags
    result.opaque = watch.compare()
    for path, obs in result.opaque.items():
        _record_opaque(rec, obs)
        if obs.random and obs.changed:
            result.flags.append(("random", f"draws random numbers from `{render(path)}` ({obs.type_name}), "
                                 "advancing its state", "the example call"))
    for name, state in rng_states().items():
        if not same_state(state, rng_before.get(name)) and not any(f[0] == "random" for f in result.flags):
            result.flags.append(("random", f"{name} (global random state consumed)", "the example call"))
    after = {"args": traced_args, **final}
    _mark_changes(rec, pristine, after)
    _observe(rec, pristine, after)
    _add_unused(rec, pristine, passed)
    _record_return(rec, ret, traced_args)
    result.accesses = rec.accesses
    if purity and result.error is None:
        result.nondeterministic = _purity(fn, sig, roots, pristine)
    set_rng_states(rng_before)
    return result


def _record_opaque(rec: Recorder, obs: OpaqueObservation) -> None:
    if not obs.changed and obs.path not in rec.accesses:
        return  # reachable but neither used nor changed: not part of the interface
    acc = rec.access(obs.path)
    acc.type_name = acc.type_name or obs.type_name
    if obs.changed:
        acc.changed = True
        acc.read = True  # the rest of its state is kept: read, then written
        acc.rbw = True
    note = f"opaque {obs.type_name} object: " + (
        f"its {', '.join(obs.changed)} changed" if obs.changed
        else "state unchanged by the call" if obs.observable else "its state cannot be observed")
    if note not in acc.notes:
        acc.notes.append(note)


def _mark_changes(rec: Recorder, before: dict[str, Any], after: dict[str, Any]) -> None:
    for path, value in state_diff(before, after).items():
        acc = rec.access(path)
        acc.changed = True
        if value is _MISSING:
            acc.notes.append("deleted by the call")
        old = values_at(root_value(before, path[0]), path[1:])
        if not old:
            acc.new_object = True
            acc.notes.append("created by the call")
        elif value is not _MISSING and base_type(old[0]) is not base_type(value) and not is_scalar(value):
            acc.new_object = True
        if acc.new_object and value is not _MISSING and not is_numeric(value) and fields_of(value):
            # An object created and kept (e.g. track.fit = Fit(...)): its fields are the outputs.
            sub = Recorder()
            _record_value(sub, path, value, {})
            for p, a in sub.accesses.items():
                if p != path:
                    child = rec.access(p)
                    child.merge(a)
                    child.changed = child.new_object = True
                    child.notes.append("in an object created by the call")
            acc.expanded = True
            acc.type_name = type(value).__qualname__
            acc.type_ref = type(value)


def _observe(rec: Recorder, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Shapes, dtypes and lengths of every recorded path, from the snapshots."""
    for path, acc in list(rec.accesses.items()):
        if path[0][0] == "return":
            continue
        for state in (before, after):
            root = root_value(state, path[0])
            if root is _MISSING:
                continue
            for v in values_at(root, path[1:]):
                acc.observe(v)
            # Variable-length collections on the way: record their lengths.
            for i, step in enumerate(path[1:], start=1):
                if step == EACH:
                    for coll in values_at(root, path[1:i]):
                        if isinstance(coll, (list, tuple)):
                            acc.lengths.add(len(coll))
            if acc.shapes or acc.type_name:
                break


def _add_unused(rec: Recorder, before: dict[str, Any], passed: list[str]) -> None:
    """Arguments never touched, and fields of touched objects that were never read."""
    seen_roots = {p[0] for p in rec.accesses}
    for name, value in before["args"].items():
        root = ("arg", name)
        if root not in seen_roots:
            acc = rec.access((root,))
            acc.observe(value)
    parents: dict[Path, set[str]] = {}
    for path in rec.accesses:
        if len(path) > 1 and path[-1][0] == "attr":
            parents.setdefault(path[:-1], set()).add(path[-1][1])
    for parent, used in parents.items():
        objs = values_at(root_value(before, parent[0]), parent[1:])
        if not objs or isinstance(objs[0], (dict, list, np.ndarray)):
            continue
        rec.access(parent).fields = list(fields_of(objs[0]))  # declaration order, for proposals
        for name, value in fields_of(objs[0]).items():
            if name not in used and not name.startswith("_") and is_numeric(value):
                acc = rec.access(parent + (("attr", name),))
                acc.observe(value)


def _record_value(rec: Recorder, path: Path, value: Any, args: dict[str, Any], depth: int = 0) -> None:
    """Record an output value at ``path``: numbers and arrays as leaves, lists as ``[*]``, objects by field."""
    if depth > 4:
        return
    if is_numeric(value) or value is None or isinstance(value, (str, bytes)):
        acc = rec.access(path)
        acc.on_write()
        acc.observe(value)
        if isinstance(value, np.ndarray):
            for name, a in args.items():
                if isinstance(a, np.ndarray) and np.shares_memory(value, a):
                    acc.notes.append(f"shares memory with argument {name}")
                    break
            else:
                acc.notes.append("newly allocated")
    elif isinstance(value, list):
        rec.access(path).lengths.add(len(value))
        for v in value:
            _record_value(rec, path + (EACH,), v, args, depth + 1)
            rec.access(path + (EACH,)).lengths.add(len(value))
        if not value:
            rec.access(path).on_write()
    elif isinstance(value, (tuple, dict)):
        items = enumerate(value) if isinstance(value, tuple) else value.items()
        for k, v in items:
            _record_value(rec, path + (("item", k),), v, args, depth + 1)
    else:
        fields = {k: v for k, v in fields_of(value).items() if not k.startswith("_")}
        acc = rec.access(path)
        if not fields:
            acc.on_write()
            acc.observe(value)
        else:
            acc.expanded = True
            acc.type_name = type(value).__qualname__
            acc.type_ref = type(value)
            acc.fields = list(fields)
        for k, v in fields.items():
            _record_value(rec, path + (("attr", k),), v, args, depth + 1)


def _record_return(rec: Recorder, ret: Any, args: dict[str, Any]) -> None:
    if ret is not None:
        _record_value(rec, (("return",),), ret, args)


def _purity(fn: Any, sig: inspect.Signature, roots: Roots, pristine: dict[str, Any]) -> list[str]:
    """Run the plain function twice on fresh copies; the paths whose outcome differs."""
    outcomes = []
    for _ in range(2):
        work = copy_state(pristine)
        try:
            roots.install(work)
            ret = _call(fn, sig, work["args"])
            outcome = {"args": work["args"], **roots.collect()}
            outcome["args"] = dict(outcome["args"], **{"\0return": ret})
        except Exception as exc:  # noqa: BLE001
            outcome = {"args": {"\0error": f"{type(exc).__name__}: {exc}"}, "globals": {}, "cells": {}}
        finally:
            roots.restore()
        outcomes.append(copy_state(outcome))
    d: dict[Path, Any] = {}
    a, b = outcomes
    for name in set(a["args"]) | set(b["args"]):
        diff(a["args"].get(name, _MISSING), b["args"].get(name, _MISSING), (("arg", name),), d)
    for key in ("globals", "cells"):
        for path in set(a[key]) | set(b[key]):
            diff(a[key].get(path, _MISSING), b[key].get(path, _MISSING), path, d)
    return sorted(render(p).replace("\0return", "return") for p in d)


__all__ = ["DynamicResult", "diff", "trace_call"]
