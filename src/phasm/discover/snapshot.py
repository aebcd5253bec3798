"""Snapshots of the data one call sees, and the comparison of two snapshots.

:class:`Roots` gathers what a call can reach -- its arguments, the module
globals it refers to, its closure cells -- deep-copies it, installs copies
into the modules and cells for a run, collects the values left behind and
puts the originals back.  :func:`diff` lists the paths whose values differ
between two snapshots (arrays element-wise, lists by length then element,
dicts by key, objects by field, opaque objects by their own equality).

Example
-------
>>> import numpy as np
>>> out = {}
>>> diff({"a": np.zeros(2), "n": 1}, {"a": np.ones(2), "n": 1}, (("arg", "s"),), out)
>>> list(out)
[(('arg', 's'), ('item', 'a'))]
"""

from __future__ import annotations

import copy
import sys
import types
from typing import Any, Iterable

import numpy as np

from phasm.discover.opaque import changed_parts, is_opaque, observable_state
from phasm.discover.paths import EACH, Path, is_scalar
from phasm.discover.scope import is_data
from phasm.discover.tracing import fields_of

MISSING = object()


def copy_state(state: dict[str, dict]) -> dict[str, dict]:
    """Deep copy of ``{section: {key: value}}``; a value that cannot be copied is kept as it is."""
    try:
        return copy.deepcopy(state)
    except Exception:  # noqa: BLE001 - an un-copyable value somewhere: copy what we can
        out: dict[str, dict] = {}
        for section, table in state.items():
            out[section] = {}
            for k, v in table.items():
                try:
                    out[section][k] = copy.deepcopy(v)
                except Exception:  # noqa: BLE001 - kept as is, never instrumented (see Roots.uncopied)
                    out[section][k] = v
        return out


class Roots:
    """The data one call sees: arguments, globals, closure cells (paths -> values)."""

    def __init__(self, fn: Any, arguments: dict[str, Any], globals_used: Iterable[tuple[str, str]]) -> None:
        self.fn = fn
        self.args = dict(arguments)
        self.globals: dict[Path, Any] = {}
        for mod_name, name in sorted(set(globals_used)):
            module = sys.modules.get(mod_name)
            if module is None:
                continue
            value = module.__dict__.get(name, MISSING)
            if value is MISSING or is_data(value):
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
        return copy_state({"args": self.args, "globals": self.globals, "cells": self.cells})

    def uncopied(self, state: dict[str, Any]) -> set:
        """Keys of ``state`` whose values are the originals (deep copy failed): not to be instrumented."""
        out = set()
        for key, table in (("args", self.args), ("globals", self.globals), ("cells", self.cells)):
            for k, v in table.items():
                if state[key].get(k) is v and not is_scalar(v) and v is not None and v is not MISSING \
                        and not isinstance(v, (str, bytes, tuple, frozenset)):
                    out.add(k)
        return out

    def install(self, state: dict[str, Any]) -> None:
        for path, value in state["globals"].items():
            module = sys.modules[path[0][1]]
            if value is MISSING:
                module.__dict__.pop(path[0][2], None)
            else:
                module.__dict__[path[0][2]] = value
        cells = dict(zip(self.fn.__code__.co_freevars, self.fn.__closure__ or ()))
        for path, value in state["cells"].items():
            cells[path[0][1]].cell_contents = value

    def collect(self) -> dict[str, Any]:
        out: dict[Path, Any] = {}
        for path in self.globals:
            out[path] = sys.modules[path[0][1]].__dict__.get(path[0][2], MISSING)
        cells = dict(zip(self.fn.__code__.co_freevars, self.fn.__closure__ or ()))
        closure = {}
        for path in self.cells:
            try:
                closure[path] = cells[path[0][1]].cell_contents
            except ValueError:
                closure[path] = MISSING
        return {"globals": out, "cells": closure}

    def restore(self) -> None:
        self.install({"globals": self.globals, "cells": self.cells})


def rng_states() -> dict[str, Any]:
    """The global random states a function can consume without a seed."""
    import random

    return {"random": random.getstate(), "numpy.random": np.random.get_state(legacy=False)}


def set_rng_states(states: dict[str, Any]) -> None:
    """Put back global random states taken by :func:`rng_states` (inspection leaves them as it found them)."""
    import random

    random.setstate(states["random"])
    np.random.set_state(states["numpy.random"])


def same_state(a: Any, b: Any) -> bool:
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


def values_at(value: Any, steps: tuple) -> list[Any]:
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


def root_value(state: dict[str, Any], root: tuple) -> Any:
    if root[0] == "arg":
        return state["args"].get(root[1], MISSING)
    if root[0] == "global":
        return state["globals"].get((root,), MISSING)
    if root[0] == "closure":
        return state["cells"].get((root,), MISSING)
    return MISSING


def diff(before: Any, after: Any, path: Path, out: dict[Path, Any]) -> None:
    """Paths whose value differs between two snapshots, with the value after (into ``out``).

    Each pair of objects is compared once, so shared and cyclic structures are cheap.
    """
    _diff(before, after, path, out, 0, set())


def _diff(before: Any, after: Any, path: Path, out: dict[Path, Any], depth: int, seen: set) -> None:
    if depth > 12 or before is after:
        return
    if not is_scalar(before):
        key = (id(before), id(after))
        if key in seen:
            return
        seen.add(key)
    if isinstance(before, np.ndarray) or isinstance(after, np.ndarray):
        if not (isinstance(before, np.ndarray) and isinstance(after, np.ndarray)) or before.shape != after.shape \
                or before.dtype != after.dtype:
            out[path] = after
            return
        before_view, after_view = before.view(np.ndarray), after.view(np.ndarray)
        equal = np.array_equal(before_view, after_view, equal_nan=before_view.dtype.kind in "fc")
        if not equal:
            out[path] = after
        return
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            out[path] = after
            return
        for b, a in zip(list.__iter__(before), list.__iter__(after)):
            _diff(b, a, path + (EACH,), out, depth + 1, seen)
        return
    if isinstance(before, tuple) and isinstance(after, tuple) and len(before) == len(after):
        for i, (b, a) in enumerate(zip(before, after)):
            _diff(b, a, path + (("item", i),), out, depth + 1, seen)
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for k in set(before) | set(after):
            b = dict.get(before, k, MISSING)
            a = dict.get(after, k, MISSING)
            if b is MISSING or a is MISSING:
                out[path + (("item", k),)] = a
            else:
                _diff(b, a, path + (("item", k),), out, depth + 1, seen)
        return
    if isinstance(before, (types.MethodType, types.FunctionType)) and type(before) is type(after):
        # Code, not data: the same method of a copy, or a function rebuilt from the same code, is no change.
        fb, fa = getattr(before, "__func__", before), getattr(after, "__func__", after)
        if fb is not fa and fb.__code__ != fa.__code__:
            out[path] = after
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
    if is_opaque(before):  # a compiled extension's object: compare what it shows of its state
        if changed_parts(observable_state(before), observable_state(after)):
            out[path] = after
        return
    fb, fa = fields_of(before), fields_of(after)
    if fb or fa:
        for k in set(fb) | set(fa):
            b, a = fb.get(k, MISSING), fa.get(k, MISSING)
            if b is MISSING or a is MISSING:
                out[path + (("attr", k),)] = a
            else:
                _diff(b, a, path + (("attr", k),), out, depth + 1, seen)
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


def state_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[Path, Any]:
    out: dict[Path, Any] = {}
    for name in before["args"]:
        diff(before["args"][name], after["args"].get(name, MISSING), (("arg", name),), out)
    for key in ("globals", "cells"):
        for path, value in before[key].items():
            diff(value, after[key].get(path, MISSING), path, out)
    return out


def base_type(value: Any) -> type:
    if isinstance(value, np.ndarray):
        return np.ndarray
    if isinstance(value, list):
        return list
    if isinstance(value, dict):
        return dict
    return getattr(type(value), "_phasm_traced_base", type(value))
