"""Ranking: inclusive shares, the tiny and tower filters, roots, Amdahl and Gustafson figures."""

from __future__ import annotations

import math

import pytest

from phasm.profile.ranking import amdahl, gustafson, rank
from phasm.profile.session import Frame, Session


def build(stacks: dict[tuple[str, ...], tuple[float, float]], thread: str = "MainThread", s: Session | None = None):
    s = s or Session()
    for names, (on, off) in stacks.items():
        ids = tuple(s.frame_id(Frame("app" if not n.startswith("np.") else "numpy", n, "app.py" if not n.startswith("np.")
                                     else "/venv/site-packages/numpy/x.py", 1, library=n.startswith("np.")))
                    for n in names)
        s.add(thread, ids, on, off)
    return s


def test_amdahl_and_gustafson():
    assert amdahl(0.5) == pytest.approx(2.0)
    assert amdahl(0.5, 10) == pytest.approx(1 / 0.55)
    assert amdahl(1.0) == math.inf
    assert gustafson(0.5, 10) == pytest.approx(5.5)
    with pytest.raises(ValueError, match="p must be within"):
        amdahl(1.5)
    with pytest.raises(ValueError, match="s must be > 0"):
        amdahl(0.5, 0)


def test_known_shares_and_figures():
    s = build({("main", "loop", "a"): (0.6, 0.0), ("main", "loop", "b"): (0.2, 0.1), ("main", "loop", "c"): (0.0, 0.1)})
    r = rank(s, speed=10, root="loop")
    by = {c.name: c for c in r.candidates}
    assert [c.name for c in r.candidates] == ["app:a", "app:b", "app:c"]  # the root is not a candidate
    a = by["app:a"]
    assert a.p == pytest.approx(0.6)
    assert a.p_on == pytest.approx(0.75)
    assert a.p_off == pytest.approx(0.0)
    assert a.amdahl == pytest.approx(2.5)
    assert a.speedup == pytest.approx(1 / (0.4 + 0.06))
    assert a.gustafson == pytest.approx(0.4 + 6.0)
    assert by["app:c"].p_off == pytest.approx(0.5)
    assert "app:main" not in by  # outside the root


def test_tiny_and_tower_filters():
    s = build({("main", "run", "solve", "kernel"): (0.97, 0.0), ("main", "run", "solve"): (0.005, 0.0),
               ("main", "run", "log"): (0.01, 0.0), ("main", "other"): (0.015, 0.0)})
    r = rank(s)
    names = [c.name for c in r.candidates]
    assert "app:kernel" in names
    # run -> solve -> kernel pass >= 95 % down a chain of the same time: towers, not candidates
    assert {"app:run", "app:solve", "app:main"} <= set(r.dropped["tower"])
    assert {"app:log", "app:other"} <= set(r.dropped["tiny"])
    assert names == ["app:kernel"]


def test_shared_helper_does_not_make_callers_towers():
    s = build({("main", "a", "helper"): (0.6, 0), ("main", "b", "helper"): (0.3, 0), ("main", "c"): (0.1, 0)})
    names = [c.name for c in rank(s).candidates]
    assert {"app:a", "app:b", "app:helper"} <= set(names)


def test_library_frames_are_folded_not_candidates():
    s = build({("main", "solve", "np.linalg", "np.inner"): (0.8, 0), ("main", "other"): (0.2, 0)})
    names = [c.name for c in rank(s).candidates]
    assert "app:solve" in names  # the user's function is the candidate, not numpy's
    assert not any(n.startswith("numpy") for n in names)


def test_cost_model_speed_is_used():
    s = build({("main", "a"): (0.5, 0), ("main", "b"): (0.5, 0)})
    r = rank(s, speed=2, cost={"app:b": 100.0}, root="main")
    assert r.candidates[0].name == "app:b"
    assert r.candidates[0].s_source == "cost model"
    assert r.candidates[0].speedup == pytest.approx(1 / (0.5 + 0.005))
    assert r.candidates[1].s == 2 and r.candidates[1].s_source == "stated"


def test_wall_share_counts_main_thread_only():
    s = build({("main", "a"): (0.5, 0.5)})
    build({("bg", "idle"): (0.0, 5.0)}, thread="worker", s=s)
    r = rank(s)
    a = {c.name: c for c in r.candidates}["app:a"]
    assert a.p == pytest.approx(1.0)  # the worker's waiting does not dilute the program's run time
    assert a.p_off == pytest.approx(0.5 / 5.5)


def test_bad_arguments():
    s = build({("main", "a"): (1.0, 0)})
    with pytest.raises(ValueError, match="root 'nope' is not in the profile; user functions seen"):
        rank(s, root="nope")
    with pytest.raises(ValueError, match="speed must be > 0"):
        rank(s, speed=0)
    with pytest.raises(ValueError, match="tower must be within"):
        rank(s, tower=0.2)


def test_recursion_counts_once_and_is_not_a_tower():
    s = build({("main", "fib", "fib", "fib"): (0.7, 0), ("main", "fib"): (0.1, 0), ("main", "other"): (0.2, 0)})
    by = {c.name: c for c in rank(s, root="main").candidates}
    assert by["app:fib"].p == pytest.approx(0.8)  # not 0.7 * 3 + 0.1
    assert by["app:other"].p == pytest.approx(0.2)
