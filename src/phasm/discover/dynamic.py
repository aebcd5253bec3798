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

import copy
import dis
import inspect
import os
import sys
import time
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from phasm.discover.paths import EACH, Access, Path, describe, is_numeric, is_scalar, render
from phasm.discover.static import in_scope_predicate, is_data
from phasm.discover import tracing
from phasm.discover.tracing import Instrumenter, Recorder, TracedArray, TracedDict, TracedList, _fields
from phasm.discover.unsafe import callable_name, classify

_MISSING = object()


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


class _Roots:
    """The data one call sees: arguments, globals, closure cells (paths -> values)."""

    def __init__(self, fn: Any, arguments: dict[str, Any], globals_used: Iterable[tuple[str, str]]) -> None:
        self.fn = fn
        self.args = dict(arguments)
        self.globals: dict[Path, Any] = {}
        for mod_name, name in sorted(set(globals_used)):
            module = sys.modules.get(mod_name)
            if module is None:
                continue
            value = module.__dict__.get(name, _MISSING)
            if value is _MISSING or is_data(value):
                self.globals[(("global", mod_name, name),)] = value
        self.cells: dict[Path, Any] = {}
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if is_data(value):
                self.cells[(("closure", name),)] = value

    def snapshot(self) -> dict[str, Any]:
        state = {"args": self.args, "globals": self.globals, "cells": self.cells}
        try:
            return copy.deepcopy(state)
        except Exception:  # noqa: BLE001 - an un-copyable value somewhere: copy what we can
            out: dict[str, Any] = {}
            for key, table in state.items():
                out[key] = {}
                for k, v in table.items():
                    try:
                        out[key][k] = copy.deepcopy(v)
                    except Exception:  # noqa: BLE001
                        out[key][k] = v
            return out

    def install(self, state: dict[str, Any]) -> None:
        for path, value in state["globals"].items():
            module = sys.modules[path[0][1]]
            if value is _MISSING:
                module.__dict__.pop(path[0][2], None)
            else:
                module.__dict__[path[0][2]] = value
        cells = dict(zip(self.fn.__code__.co_freevars, self.fn.__closure__ or ()))
        for path, value in state["cells"].items():
            cells[path[0][1]].cell_contents = value

    def collect(self) -> dict[str, Any]:
        out: dict[Path, Any] = {}
        for path in self.globals:
            out[path] = sys.modules[path[0][1]].__dict__.get(path[0][2], _MISSING)
        cells = dict(zip(self.fn.__code__.co_freevars, self.fn.__closure__ or ()))
        closure = {}
        for path in self.cells:
            try:
                closure[path] = cells[path[0][1]].cell_contents
            except ValueError:
                closure[path] = _MISSING
        return {"globals": out, "cells": closure}

    def restore(self) -> None:
        self.install({"globals": self.globals, "cells": self.cells})


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
        raise TypeError(f"{fn.__qualname__} is a generator or coroutine function: inspect the function "
                        "that consumes it, a surrogate replaces plain calls")
    sig = inspect.signature(fn)
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"example arguments do not fit {fn.__qualname__}{sig}: {exc}") from None
    passed = list(bound.arguments)
    bound.apply_defaults()
    defaults = {k: v for k, v in bound.arguments.items() if k not in passed}
    in_scope = in_scope or in_scope_predicate(fn)
    roots = _Roots(fn, bound.arguments, globals_used)
    pristine = roots.snapshot()
    result = DynamicResult({}, passed, defaults)

    # Traced run.
    rec = Recorder()
    inst = Instrumenter(rec)
    work = roots.snapshot()
    traced_args = {n: inst.instrument(v, (("arg", n),)) for n, v in work["args"].items()}
    work["globals"] = {p: (inst.instrument(v, p) if v is not _MISSING else v) for p, v in work["globals"].items()}
    work["cells"] = {p: inst.instrument(v, p) for p, v in work["cells"].items()}
    tracer = _Tracer(rec, fn, in_scope, traced_args)
    ret: Any = None
    rng_before = _rng_states()
    t0 = time.perf_counter()
    previous_trace = sys.gettrace()
    try:
        roots.install(work)
        sys.settrace(tracer.on_call)
        tracer.intercept()
        with rec:
            ret = _call(fn, sig, traced_args)
    except Exception as exc:  # noqa: BLE001 - the example failing is a finding, not a crash of inspect
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        tracer.release()
        sys.settrace(previous_trace)
        result.seconds = time.perf_counter() - t0
        final = roots.collect()
        roots.restore()
        inst.undo()
    result.flags = tracer.flags
    for name, state in _rng_states().items():
        if not _same_state(state, rng_before.get(name)) and not any(f[0] == "random" for f in result.flags):
            result.flags.append(("random", f"{name} (global random state consumed)", "the example call"))
    after = {"args": traced_args, **final}
    _mark_changes(rec, pristine, after)
    _observe(rec, pristine, after)
    _add_unused(rec, pristine, passed)
    _record_return(rec, ret, traced_args)
    result.accesses = rec.accesses
    if purity and result.error is None:
        result.nondeterministic = _purity(fn, sig, roots, pristine)
    return result


# -- line tracer and profile hook ----------------------------------------------------


def _nested_codes(code: types.CodeType) -> set[types.CodeType]:
    out = {code}
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            out |= _nested_codes(c)
    return out


class _Tracer:
    """sys.settrace / sys.setprofile callbacks: bytecode-level loads and stores, unsafe calls."""

    _OPS = {"LOAD_FAST", "LOAD_DEREF", "LOAD_CLOSURE", "STORE_FAST", "STORE_DEREF", "DELETE_FAST",
            "LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_CLASSDEREF"}

    def __init__(self, rec: Recorder, fn: Any, in_scope: Callable[[str], bool], args: dict[str, Any]) -> None:
        self.rec = rec
        self.in_scope = in_scope
        self.targets = _nested_codes(fn.__code__)
        self.freevars = set(fn.__code__.co_freevars)
        self.args = args
        self.rebound: set[str] = set()
        self.seen: set[tuple[types.CodeType, int]] = set()
        self.pending: dict[types.CodeType, set[int]] = {}
        self.lines: dict[types.CodeType, dict[int, list[tuple[str, Any]]]] = {}
        self.scope: dict[types.CodeType, bool] = {}
        self.flags: list[tuple[str, str, str]] = []
        self._flagged: set[tuple[str, str]] = set()

    def _in_scope(self, code: types.CodeType) -> bool:
        hit = self.scope.get(code)
        if hit is None:
            hit = self.scope[code] = code in self.targets or self.in_scope(code.co_filename)
        return hit

    def on_call(self, frame: Any, event: str, arg: Any) -> Any:
        code = frame.f_code
        if event == "call" and self._in_scope(code):
            pending = self.pending.get(code)
            if pending is None:
                pending = self.pending[code] = set(self._by_line(code))
            return self.on_line if pending else None
        return None

    def on_line(self, frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            key = (frame.f_code, frame.f_lineno)
            if key not in self.seen:
                self.seen.add(key)
                pending = self.pending.get(frame.f_code)
                if pending is not None:
                    pending.discard(frame.f_lineno)
                saved, tracing._ACTIVE = tracing._ACTIVE, None  # our own bookkeeping is not the program's access
                try:
                    self._line(frame, key)
                finally:
                    tracing._ACTIVE = saved
                if not pending:
                    return None  # every line with a load/store of interest seen: stop tracing this frame
        return self.on_line

    def _by_line(self, code: types.CodeType) -> dict[int, list[tuple[str, Any]]]:
        table = self.lines.get(code)
        if table is None:
            table = {}
            for ins in dis.get_instructions(code):
                if ins.opname in self._OPS and ins.positions is not None and ins.positions.lineno is not None:
                    table.setdefault(ins.positions.lineno, []).append((ins.opname, ins.argval))
            self.lines[code] = table
        return table

    def _line(self, frame: Any, key: tuple[types.CodeType, int]) -> None:
        code, line = key
        is_target = code in self.targets
        module = frame.f_globals.get("__name__", "?")
        for op, name in self._by_line(code).get(line, ()):
            if op == "LOAD_GLOBAL":
                value = frame.f_globals.get(name, _MISSING)
                if value is not _MISSING and is_data(value):
                    path = (("global", module, name),)
                    if is_scalar(value) or isinstance(value, str):
                        self.rec.read(path, value)
                    else:
                        self.rec.touch(path, value)
                    self.rec.access(path).lines.add(f"{os.path.basename(code.co_filename)}:{line}")
            elif op in ("STORE_GLOBAL", "DELETE_GLOBAL"):
                path = (("global", module, name),)
                self.rec.write(path)
                self.rec.access(path).lines.add(f"{os.path.basename(code.co_filename)}:{line}")
            elif not is_target:
                continue
            elif name in self.args and name not in self.rebound:
                path = (("arg", name),)
                if op.startswith("STORE") or op.startswith("DELETE"):
                    if self.rec.accesses.get(path) is None or self.rec.accesses[path].first is None:
                        self.rebound.add(name)
                elif is_scalar(self.args[name]) or isinstance(self.args[name], str):
                    self.rec.read(path, self.args[name])
                else:
                    self.rec.touch(path, self.args[name])
            elif name in self.freevars and code is not None:
                path = (("closure", name),)
                if op.startswith("STORE"):
                    self.rec.write(path)
                else:
                    value = frame.f_locals.get(name)
                    if is_scalar(value):
                        self.rec.read(path, value)
                    else:
                        self.rec.touch(path, value)

    def intercept(self) -> None:
        """Wrap the well-known unsafe callables so that calls from user code are logged."""
        import importlib

        self._patched: list[tuple[Any, str, Any]] = []
        for qual in _INTERCEPT:
            mod_name, _, attr = qual.rpartition(".")
            try:
                module = importlib.import_module(mod_name)
                original = getattr(module, attr)
            except (ImportError, AttributeError):
                continue
            setattr(module, attr, self._wrapper(qual, original))
            self._patched.append((module, attr, original))

    def release(self) -> None:
        for module, attr, original in reversed(getattr(self, "_patched", [])):
            setattr(module, attr, original)
        self._patched = []

    def _wrapper(self, qual: str, original: Any) -> Any:
        flag = classify("builtins.print" if qual == "builtins.print" else qual)
        tracer = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1)
            if flag is not None and tracer._in_scope(caller.f_code) and (flag, qual) not in tracer._flagged:
                tracer._flagged.add((flag, qual))
                tracer.flags.append((flag, qual, f"{os.path.basename(caller.f_code.co_filename)}:{caller.f_lineno}"))
            return original(*args, **kwargs)

        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
        return wrapper


# Unsafe callables wrapped during the traced call (others are found statically).
_INTERCEPT = (
    "builtins.print", "builtins.open", "builtins.input", "io.open",
    "time.time", "time.time_ns", "time.perf_counter", "time.monotonic", "time.process_time", "time.sleep",
    "os.system", "os.popen", "os.remove", "os.unlink", "os.makedirs", "os.mkdir", "os.rename", "os.getenv",
    "subprocess.run", "subprocess.Popen", "subprocess.call", "subprocess.check_call", "subprocess.check_output",
    "socket.socket", "socket.create_connection",
)


def _rng_states() -> dict[str, Any]:
    """The global random states a function can consume without a seed."""
    import random

    return {"random": random.getstate(), "numpy.random": np.random.get_state(legacy=False)}


def _same_state(a: Any, b: Any) -> bool:
    try:
        return diff_free(a, b)
    except Exception:  # noqa: BLE001
        return a == b


def diff_free(a: Any, b: Any) -> bool:
    """True when two snapshots hold equal values (arrays compared element-wise)."""
    out: dict[Path, Any] = {}
    diff(a, b, (("arg", "state"),), out)
    return not out


# -- snapshots ----------------------------------------------------------------------------


def _values_at(value: Any, steps: tuple) -> list[Any]:
    """All values a path reaches from ``value`` (several under ``[*]``)."""
    values = [value]
    for step in steps:
        nxt = []
        for v in values:
            try:
                if step[0] == "attr":
                    nxt.append(object.__getattribute__(v, step[1]) if not isinstance(v, dict) else v[step[1]])
                elif step[0] == "item":
                    nxt.append(dict.__getitem__(v, step[1]) if isinstance(v, dict) else v[step[1]])
                else:
                    nxt.extend(list.__iter__(v) if isinstance(v, list) else iter(v))
            except Exception:  # noqa: BLE001 - the path does not exist in this state
                continue
        values = nxt
    return values


def _root_value(state: dict[str, Any], root: tuple) -> Any:
    if root[0] == "arg":
        return state["args"].get(root[1], _MISSING)
    if root[0] == "global":
        return state["globals"].get((root,), _MISSING)
    if root[0] == "closure":
        return state["cells"].get((root,), _MISSING)
    return _MISSING


def diff(before: Any, after: Any, path: Path, out: dict[Path, Any], depth: int = 0) -> None:
    """Paths whose value differs between two snapshots, with the value after."""
    if depth > 12:
        return
    if before is after and not isinstance(before, (list, dict, np.ndarray)) and not hasattr(before, "__dict__"):
        return
    if isinstance(before, np.ndarray) or isinstance(after, np.ndarray):
        if not (isinstance(before, np.ndarray) and isinstance(after, np.ndarray)) or before.shape != after.shape \
                or before.dtype != after.dtype:
            out[path] = after
            return
        b, a = before.view(np.ndarray), after.view(np.ndarray)
        equal = np.array_equal(b, a, equal_nan=b.dtype.kind in "fc")
        if not equal:
            out[path] = after
        return
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            out[path] = after
            return
        for b, a in zip(list.__iter__(before), list.__iter__(after)):
            diff(b, a, path + (EACH,), out, depth + 1)
        return
    if isinstance(before, tuple) and isinstance(after, tuple) and len(before) == len(after):
        for i, (b, a) in enumerate(zip(before, after)):
            diff(b, a, path + (("item", i),), out, depth + 1)
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for k in set(before) | set(after):
            b = dict.get(before, k, _MISSING)
            a = dict.get(after, k, _MISSING)
            if b is _MISSING or a is _MISSING:
                out[path + (("item", k),)] = a
            else:
                diff(b, a, path + (("item", k),), out, depth + 1)
        return
    bt = getattr(type(before), "_phasm_traced_base", type(before))
    at = getattr(type(after), "_phasm_traced_base", type(after))
    if bt is not at:
        out[path] = after
        return
    if is_scalar(before) or isinstance(before, (str, bytes)) or before is None:
        try:
            same = before == after or (before != before and after != after)
        except Exception:  # noqa: BLE001
            same = False
        if not same:
            out[path] = after
        return
    fb, fa = _fields(before), _fields(after)
    if fb or fa:
        for k in set(fb) | set(fa):
            b, a = fb.get(k, _MISSING), fa.get(k, _MISSING)
            if b is _MISSING or a is _MISSING:
                out[path + (("attr", k),)] = a
            else:
                diff(b, a, path + (("attr", k),), out, depth + 1)
        return
    # An opaque object (C type without fields): its own equality, else an informative repr.
    try:
        if type(before).__eq__ is not object.__eq__:
            if not bool(before == after):
                out[path] = after
            return
        rb, ra = repr(before), repr(after)
    except Exception:  # noqa: BLE001
        return
    if " at 0x" not in rb and rb != ra:
        out[path] = after


def _state_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[Path, Any]:
    out: dict[Path, Any] = {}
    for name in before["args"]:
        diff(before["args"][name], after["args"].get(name, _MISSING), (("arg", name),), out)
    for key in ("globals", "cells"):
        for path, value in before[key].items():
            diff(value, after[key].get(path, _MISSING), path, out)
    return out


def _mark_changes(rec: Recorder, before: dict[str, Any], after: dict[str, Any]) -> None:
    for path, value in _state_diff(before, after).items():
        acc = rec.access(path)
        acc.changed = True
        if value is _MISSING:
            acc.notes.append("deleted by the call")
        old = _values_at(_root_value(before, path[0]), path[1:])
        if not old:
            acc.new_object = True
            acc.notes.append("created by the call")
        elif value is not _MISSING and _base_type(old[0]) is not _base_type(value) and not is_scalar(value):
            acc.new_object = True
        if acc.new_object and value is not _MISSING and not is_numeric(value) and _fields(value):
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


def _base_type(value: Any) -> type:
    if isinstance(value, np.ndarray):
        return np.ndarray
    if isinstance(value, list):
        return list
    if isinstance(value, dict):
        return dict
    return getattr(type(value), "_phasm_traced_base", type(value))


def _observe(rec: Recorder, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Shapes, dtypes and lengths of every recorded path, from the snapshots."""
    for path, acc in list(rec.accesses.items()):
        if path[0][0] == "return":
            continue
        for state in (before, after):
            root = _root_value(state, path[0])
            if root is _MISSING:
                continue
            for v in _values_at(root, path[1:]):
                acc.observe(v)
            # Variable-length collections on the way: record their lengths.
            for i, step in enumerate(path[1:], start=1):
                if step == EACH:
                    for coll in _values_at(root, path[1:i]):
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
        objs = _values_at(_root_value(before, parent[0]), parent[1:])
        if not objs or isinstance(objs[0], (dict, list, np.ndarray)):
            continue
        for name, value in _fields(objs[0]).items():
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
        fields = {k: v for k, v in _fields(value).items() if not k.startswith("_")}
        acc = rec.access(path)
        if not fields:
            acc.on_write()
            acc.observe(value)
        else:
            acc.expanded = True
            acc.type_name = type(value).__qualname__
        for k, v in fields.items():
            _record_value(rec, path + (("attr", k),), v, args, depth + 1)


def _record_return(rec: Recorder, ret: Any, args: dict[str, Any]) -> None:
    if ret is not None:
        _record_value(rec, (("return",),), ret, args)


def _purity(fn: Any, sig: inspect.Signature, roots: _Roots, pristine: dict[str, Any]) -> list[str]:
    """Run the plain function twice on fresh copies; the paths whose outcome differs."""
    outcomes = []
    for _ in range(2):
        work = copy.deepcopy(pristine)
        try:
            roots.install(work)
            ret = _call(fn, sig, work["args"])
            outcome = {"args": work["args"], **roots.collect()}
            outcome["args"] = dict(outcome["args"], **{"\0return": ret})
        except Exception as exc:  # noqa: BLE001
            outcome = {"args": {"\0error": f"{type(exc).__name__}: {exc}"}, "globals": {}, "cells": {}}
        finally:
            roots.restore()
        outcomes.append(copy.deepcopy(outcome))
    d: dict[Path, Any] = {}
    a, b = outcomes
    for name in set(a["args"]) | set(b["args"]):
        diff(a["args"].get(name, _MISSING), b["args"].get(name, _MISSING), (("arg", name),), d)
    for key in ("globals", "cells"):
        for path in set(a[key]) | set(b[key]):
            diff(a[key].get(path, _MISSING), b[key].get(path, _MISSING), path, d)
    return sorted(render(p).replace("\0return", "return") for p in d)


__all__ = ["DynamicResult", "diff", "trace_call", "TracedArray", "TracedDict", "TracedList", "describe"]
