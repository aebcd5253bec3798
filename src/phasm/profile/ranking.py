"""Rank functions by what replacing them with a surrogate could buy.

For each user function (library and interpreter frames folded away) the
inclusive share ``p`` of the run it accounts for, within an optional root
function (an event loop, say), on-CPU, off-CPU and in wall time. Filters
after the original PHASM: tiny functions (below ``min_share``) and "tower"
frames that pass at least ``tower`` of their time to one child are dropped.
The root itself is
not a candidate. For each candidate, with surrogate speed ``s`` (stated, or from a cost model):

* Amdahl's bound ``1 / (1 - p)`` (an infinitely fast surrogate),
* the speedup at ``s``: ``1 / ((1 - p) + p / s)``,
* Gustafson's scaled speedup ``(1 - p) + p * s``.

Example
-------
>>> from phasm.profile.session import Frame, Session
>>> s = Session()
>>> m, a, b = (s.frame_id(Frame("app", q, "app.py", i)) for i, q in enumerate(["main", "a", "b"]))
>>> s.add("MainThread", (m, a), on_cpu=0.6); s.add("MainThread", (m, b), on_cpu=0.4)
>>> [c.name for c in rank(s, speed=10, root="main").candidates]
['app:a', 'app:b']
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from phasm.profile.session import Frame, Session


def amdahl(p: float, s: float = math.inf) -> float:
    """End-to-end speedup when a share ``p`` of the run becomes ``s`` times faster."""
    if not 0 <= p <= 1:
        raise ValueError(f"p must be within [0, 1], got {p}")
    if s <= 0:
        raise ValueError(f"s must be > 0, got {s}")
    rest = (1 - p) + (0.0 if math.isinf(s) else p / s)
    return math.inf if rest <= 0 else 1.0 / rest


def gustafson(p: float, s: float) -> float:
    """Scaled speedup ``(1 - p) + p * s``: the work done in the same time when the replaced part is ``s`` times faster."""
    if not 0 <= p <= 1:
        raise ValueError(f"p must be within [0, 1], got {p}")
    return (1 - p) + p * s


def display_name(frame: Frame) -> str:
    """``module:qualname``; a script run as ``__main__`` is named by its file stem."""
    module = frame.module
    if module == "__main__" and frame.file:
        module = os.path.splitext(os.path.basename(frame.file))[0]
    return f"{module}:{frame.qualname}"


@dataclass
class Candidate:
    """One function worth considering, with its shares and speedup figures."""

    name: str
    file: str
    line: int
    p: float          # inclusive share of the main thread's wall time (drives the speedup)
    p_on: float       # inclusive share of on-CPU time (all threads)
    p_off: float      # inclusive share of off-CPU time (all threads)
    self_share: float  # self (exclusive) share of wall time
    seconds: float    # inclusive wall seconds
    s: float          # surrogate speed used
    s_source: str     # "stated" or "cost model"
    amdahl: float
    speedup: float
    gustafson: float
    frame_id: int = -1

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "frame_id"}
        return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in d.items()}


@dataclass
class Ranking:
    """Candidates, best first, and the totals they are shares of."""

    candidates: list[Candidate]
    totals: dict[str, float]
    root: str | None
    speed: float
    dropped: dict[str, list[str]] = field(default_factory=dict)

    def scores(self) -> dict[int, float]:
        """Frame id -> score in [0, 1] (for colouring flame graphs)."""
        if not self.candidates:
            return {}
        best = max(c.speedup for c in self.candidates)
        return {c.frame_id: (c.speedup - 1) / (best - 1) if best > 1 else 1.0 for c in self.candidates}

    def to_json(self) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.candidates]


def _restrict(session: Session, stack: tuple[int, ...], roots: set[int]) -> tuple[int, ...] | None:
    for k, i in enumerate(stack):
        if i in roots:
            return stack[k:]
    return None


def rank(session: Session, *, root: str | None = None, speed: float = 10.0,
         cost: Mapping[str, float] | None = None, min_share: float = 0.02, tower: float = 0.95) -> Ranking:
    """Rank the session's user functions; ``cost`` maps ``module:qualname`` to a measured surrogate speed."""
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    if not 0 <= min_share < 1:
        raise ValueError(f"min_share must be within [0, 1), got {min_share}")
    if not 0.5 < tower <= 1:
        raise ValueError(f"tower must be within (0.5, 1], got {tower}")
    roots: set[int] = set()
    if root is not None:
        roots = {i for i, f in enumerate(session.frames)
                 if root in (f.name, f.qualname, display_name(f))}
        if not roots:
            users = sorted({display_name(f) for f in session.frames if not f.library})[:12]
            raise ValueError(f"root {root!r} is not in the profile; user functions seen: {users}")
    frames = session.frames
    main = session.main_thread
    has_main = any(th == main for th, _ in session.stacks)
    incl: dict[str, dict[int, float]] = {v: {} for v in ("on", "off", "wall")}
    self_w: dict[int, float] = {}
    child: dict[tuple[int, int], float] = {}
    totals = {"on": 0.0, "off": 0.0, "wall": 0.0}
    for (thread, stack), w in session.stacks.items():
        stack = session.fold(stack)
        if roots:
            stack = _restrict(session, stack, roots)  # type: ignore[assignment]
            if stack is None:
                continue
        is_main = thread == main or not has_main
        weights = {"on": w[0], "off": w[1], "wall": (w[0] + w[1]) if is_main else 0.0}
        for v, x in weights.items():
            if x <= 0:
                continue
            totals[v] += x
            for i in set(stack):
                incl[v][i] = incl[v].get(i, 0.0) + x
        x = weights["wall"]
        if x > 0:
            user = [i for i in stack if not frames[i].library]
            if stack and not frames[stack[-1]].library:
                self_w[stack[-1]] = self_w.get(stack[-1], 0.0) + x
            seen: set[int] = set()
            for a, b in zip(user, user[1:]):
                if a != b and a not in seen:  # recursion is not a tower
                    seen.add(a)
                    child[(a, b)] = child.get((a, b), 0.0) + x
    share = {v: (lambda i, v=v: incl[v].get(i, 0.0) / totals[v] if totals[v] > 0 else 0.0) for v in incl}
    # A "tower" passes >= `tower` of its time to one child that is no bigger than it (the child
    # is the same candidate, deeper); a helper shared by many callers does not make its callers towers.
    best_child: dict[int, float] = {}
    for (a, b), x in child.items():
        if incl["wall"].get(b, 0.0) * tower <= incl["wall"].get(a, 0.0):
            best_child[a] = max(best_child.get(a, 0.0), x)
    cost = dict(cost or {})
    candidates: list[Candidate] = []
    dropped: dict[str, list[str]] = {"tiny": [], "tower": []}
    for i, f in enumerate(frames):
        if f.library or f.qualname == "<module>" or i in roots or not any(incl[v].get(i) for v in incl):
            continue
        p, p_on, p_off = share["wall"](i), share["on"](i), share["off"](i)
        name = display_name(f)
        if max(p, p_on, p_off) < min_share:
            dropped["tiny"].append(name)
            continue
        wall_i = incl["wall"].get(i, 0.0)
        if wall_i > 0 and best_child.get(i, 0.0) >= tower * wall_i:
            dropped["tower"].append(name)
            continue
        s, src = speed, "stated"
        for key in (name, f.name, f.qualname):
            if key in cost:
                s, src = float(cost[key]), "cost model"
                break
        candidates.append(Candidate(
            name=name, file=f.file, line=f.line, p=p, p_on=p_on, p_off=p_off,
            self_share=self_w.get(i, 0.0) / totals["wall"] if totals["wall"] > 0 else 0.0,
            seconds=wall_i, s=s, s_source=src, amdahl=amdahl(min(p, 1.0)), speedup=amdahl(min(p, 1.0), s),
            gustafson=gustafson(min(p, 1.0), s), frame_id=i))
    candidates.sort(key=lambda c: (-c.speedup, -c.p, -c.p_on, c.name))
    return Ranking(candidates=candidates, totals=totals, root=root, speed=speed, dropped=dropped)
