"""Side effects a model cannot reproduce: opaque objects changed by the call, random draws.

Objects of compiled extension types (a chemistry engine's gas mixture, an
``array.array``, a ``deque``, a numpy ``Generator``) cannot be traced field by
field.  This module joins what each analysis knows about them into one
verdict per object:

- static analysis: attributes set on it (``gas.TP = T0, P``), methods called on
  it (``gas.set_equivalence_ratio(...)``), and calls into library code that it
  is handed to (``Reactor(gas)``);
- dynamic analysis: whether its observable state changed during the example
  call (:mod:`phasm.discover.watch`).

An object is reported as mutated (flag ``opaque``) when the example changed
its state, when an attribute of it is set, or when a method whose name says it
changes something (``set_*``, ``append``, ``update``, ...) is called on it; as
possibly mutated when its state cannot be observed and methods are called on
it or it is handed to code phasm does not analyse.  A surrogate would leave such an object untouched, so
later code that reads it would change behaviour: the function is not safe to
replace as it stands.

Example
-------
>>> looks_mutating("set_equivalence_ratio"), looks_mutating("setState"), looks_mutating("count")
(True, True, False)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from phasm.discover.dynamic import DynamicResult
from phasm.discover.inspection import Finding, FlagFinding
from phasm.discover.paths import Path, normalized, render
from phasm.discover.static import MUTATING_METHODS, StaticResult
from phasm.discover.watch import OpaqueObservation

# First words of method names that always mean a change of the object.  Names that often do but need
# not (``advance``, ``step``, ``solve`` on a factorization) are judged by what the object shows instead.
_CHANGING_VERBS = {
    "set", "add", "append", "extend", "insert", "pop", "remove", "clear", "update", "reset", "fill", "push",
    "put", "rotate", "sort", "reverse", "seed", "shuffle", "discard", "resize", "assign", "modify", "mutate",
    "restore", "delete", "del", "increment", "decrement", "store", "write", "equilibrate",
}


def looks_mutating(method: str) -> bool:
    """Whether a method's name says it changes its object (``set_T``, ``setState``, ``append``, not ``solve``)."""
    if method in MUTATING_METHODS:
        return True
    words = re.findall(r"[a-z]+|[A-Z][a-z]*", method.strip("_"))
    return bool(words) and words[0].lower() in _CHANGING_VERBS


@dataclass
class OpaqueRoot:
    """Everything known about the opaque object(s) at one (normalized) path."""

    path: Path
    type_name: str
    observation: OpaqueObservation | None = None
    sets: list[tuple[str, str]] = field(default_factory=list)  # (where, what) attribute / item stores
    assigned: list[str] = field(default_factory=list)  # where another object is assigned in its place
    calls: list[tuple[str, str]] = field(default_factory=list)  # (where, method)
    handed: list[tuple[str, str]] = field(default_factory=list)  # (where, callee)

    @property
    def name(self) -> str:
        """How a user names it: ``gas`` for an argument or a module global, ``model.gas`` below one."""
        root = self.path[0]
        return render((("arg", root[2]),) + self.path[1:]) if root[0] == "global" else render(self.path)

    @property
    def changed(self) -> list[str]:
        return list(self.observation.changed) if self.observation is not None else []

    @property
    def observable(self) -> bool:
        return self.observation is not None and self.observation.observable

    @property
    def random(self) -> bool:
        return self.observation is not None and self.observation.random

    def verdict(self) -> str | None:
        """``"mutates"``, ``"may mutate"`` or ``None`` (no sign that the call changes it).

        A changed picture, an attribute set or a method named for a change is a mutation.  When the
        object shows no state, any method call or hand-over to library code may be one; when it shows
        state that the example left unchanged, only the names that always mean a change count.
        """
        if self.changed or self.sets or any(looks_mutating(m) for _, m in self.calls):
            return "mutates"
        if not self.observable and (self.calls or self.handed):
            return "may mutate"
        return None

    def evidence(self) -> str:
        """Where the source touches the object: ``file:line: sets TP; file:line: set_x(); ...``."""
        items = [(w, f"sets {what}") for w, what in self.sets]
        items += [(w, f"{m}()") for w, m in self.calls]
        items += [(w, f"passed to {callee}") for w, callee in self.handed]
        items += [(w, "replaced by another object") for w in self.assigned]
        merged: dict[str, list[str]] = {}
        for where, what in sorted(items, key=lambda i: _line_key(i[0])):
            merged.setdefault(where, [])
            if what not in merged[where]:
                merged[where].append(what)
        return "; ".join(f"{w}: {', '.join(whats)}" for w, whats in merged.items())


def _line_key(where: str) -> tuple:
    m = re.match(r"(.*?):(\d+)", where)
    return (m.group(1), int(m.group(2)), where) if m else (where, 0, where)


def opaque_roots(static: StaticResult, runs: Iterable[DynamicResult]) -> dict[tuple, OpaqueRoot]:
    """The opaque objects of a call, by normalized path, with the static and dynamic evidence on each."""
    roots: dict[tuple, OpaqueRoot] = {}
    for path, type_name in static.opaque.items():
        roots.setdefault(normalized(path), OpaqueRoot(normalized(path), type_name))
    for run in runs:
        for path, obs in run.opaque.items():
            norm = normalized(path)
            root = roots.setdefault(norm, OpaqueRoot(path, obs.type_name))
            if root.observation is None:
                root.observation = OpaqueObservation(path, obs.type_name)
            root.observation.merge(obs)
    for norm, root in roots.items():
        for path, wheres in static.writes.items():
            p = normalized(path)
            if p[: len(norm)] != norm:
                continue
            if path == norm:  # `holder.gas = other` or `global gas; gas = ...`: a new binding, not a change of it
                root.assigned.extend(w for w in wheres if not _by_method(static, path, w))
                continue
            what = render(path)[len(render(norm)):].lstrip(".")
            root.sets.extend((w, what) for w in wheres if len(p) > len(norm) or not _by_method(static, path, w))
        for path, methods in static.methods.items():
            if normalized(path) == norm:
                root.calls.extend((w, m) for m, wheres in methods.items() for w in wheres)
        for path, calls in static.handed.items():
            if normalized(path) == norm:
                root.handed.extend((w, callee) for callee, w in calls)
    return roots


def _by_method(static: StaticResult, path: Path, where: str) -> bool:
    """A write that static analysis recorded for a mutating method call (reported as the call instead)."""
    return any(where in wheres for wheres in static.methods.get(path, {}).values())


def below_opaque(path: Path, roots: dict[tuple, OpaqueRoot]) -> bool:
    """``path`` lies strictly inside an opaque object (e.g. ``gas.TP``): it is reported with the object."""
    norm = normalized(path)
    return any(len(norm) > len(r) and norm[: len(r)] == r for r in roots)


def opaque_flags(roots: dict[tuple, OpaqueRoot], findings: list[Finding]) -> list[FlagFinding]:
    """One ``opaque`` flag per object the call (may) change, and the objects' findings annotated."""
    flags = []
    by_norm = {normalized(f.path): f for f in findings}
    for norm, root in roots.items():
        verdict = root.verdict()
        finding = by_norm.get(norm)
        if finding is None:
            if verdict is None and not (root.sets or root.calls or root.handed):
                continue  # reachable from the call, never used by it
            finding = Finding(root.path, "in", source="static", type_name=root.type_name)
            findings.append(finding)
        finding.extension = root.type_name
        if verdict == "mutates" and finding.kind in ("in", "unused"):
            finding.kind = "inout"
        if root.sets or root.calls or root.handed:
            finding.source = "both" if finding.source in ("dynamic", "both") else "static"
            finding.where.extend(w for w, _ in root.sets + root.calls + root.handed if w not in finding.where)
        if verdict is None or (root.random and root.changed):  # a generator's draws are flagged `random`
            continue
        where = root.evidence() or "the example call"
        scope = f", a global of {root.path[0][1]}" if root.path[0][0] == "global" else ""
        what = f"{verdict} opaque object `{root.name}` (extension type `{root.type_name}`){scope}"
        if root.changed:
            what += f": its {', '.join(root.changed)} changed in the example call"
        elif verdict == "may mutate":
            what += ": its state cannot be observed and it is handed to code phasm does not analyse"
        source = "both" if root.changed and (root.sets or root.calls or root.handed) else (
            "dynamic" if root.changed else "static")
        flags.append(FlagFinding("opaque", what, where, source))
    return flags


def locate_random_draws(roots: dict[tuple, OpaqueRoot], flags: list[FlagFinding]) -> None:
    """Give a generator's dynamic ``random`` flag the source lines where the generator is used."""
    for root in roots.values():
        evidence = root.evidence()
        if not (root.random and root.changed and evidence):
            continue
        for f in flags:
            if f.flag == "random" and f.source == "dynamic" and f"`{render(root.path)}`" in f.what:
                f.where, f.source = evidence, "both"


def stochastic_suggestion(flags: list[FlagFinding]) -> str | None:
    """The advice for a function seen drawing random numbers (dynamic evidence), else ``None``."""
    seen = [f for f in flags if f.flag in ("random", "nondeterministic") and f.source in ("dynamic", "both")]
    if not seen:
        return None
    first = seen[0]
    if first.flag == "random":
        what = first.what.removeprefix("draws random numbers ").split(", advancing")[0]
        what += f" at {first.where}" if ";" not in first.where and first.where != "the example call" else ""
    else:
        what = "two runs on the same input differ"
    return (f"stochastic: the function draws random numbers ({what}); a deterministic surrogate would learn "
            "their mean, not their spread: use @phasm.surrogate(..., stochastic=True) (a generative surrogate)")


__all__ = ["OpaqueRoot", "below_opaque", "locate_random_draws", "looks_mutating", "opaque_flags", "opaque_roots",
           "stochastic_suggestion"]
