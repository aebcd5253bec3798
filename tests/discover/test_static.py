"""Static analysis on its own: paths, aliases, calls followed, unsafe calls."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import discover_targets as T  # noqa: E402

from phasm.discover.paths import render  # noqa: E402
from phasm.discover.static import analyze_static  # noqa: E402

log = logging.getLogger("phasm.test")


def names(table):
    return sorted(render(p) for p in table)


def test_aliases_loops_and_out_arguments():
    def f(state, hits, out):
        s = state.grid
        s.dx = 2.0
        for h in hits:
            h.used = True
        np.multiply(state.y, 2.0, out=out)
        a = np.asarray(out)
        a[0] = 1.0

    res = analyze_static(f)
    assert names(res.writes) == ["hits[*].used", "out", "out[0]", "state.grid.dx"]  # a = np.asarray(out) aliases out
    assert "state.y" in names(res.reads)


def test_helper_writes_are_mapped_to_the_caller_paths():
    res = analyze_static(T.via_helper)
    assert names(res.writes) == ["state.t", "state.y[*]"]  # s.y[:] = ...: an item write
    assert res.calls == ["discover_targets._advance"]
    assert any("(in discover_targets._advance)" in w for w in res.writes[(("arg", "state"), ("attr", "t"))])


def test_depth_zero_does_not_follow_calls():
    res = analyze_static(T.via_helper, depth=0)
    assert res.writes == {} and res.calls == []


def test_globals_reads_writes_and_mutating_methods():
    res = analyze_static(T.branchy)
    assert names(res.writes) == ["global:discover_targets.HISTORY"]
    res = analyze_static(T.writes_global)
    assert names(res.writes) == ["global:discover_targets.LAST"]
    res = analyze_static(T.nested_global_attr)
    assert "global:discover_targets.CONFIG.grid.dx" in names(res.reads)
    assert ("discover_targets", "CONFIG") in res.globals_used


def test_unsafe_calls():
    import os
    import random
    import subprocess
    import time

    def f(x, path):
        log.info("x=%s", x)
        t = time.time()
        subprocess.run(["true"])
        os.environ.get("HOME")
        Path(path).write_text("x")
        rng = np.random.default_rng()
        return x + random.gauss(0, 1) + rng.normal() + t

    flags = {(flag, what) for flag, what, _ in analyze_static(f).unsafe}
    assert {("io", "logging.Logger.info"), ("time", "time.time"), ("subprocess", "subprocess.run"),
            ("io", ".write_text()"), ("random", "numpy.random.default_rng"), ("random", "random.gauss")} <= flags


def test_seeding_inside_the_function_clears_random_flags():
    import random

    def f(x):
        random.seed(3)
        return x + random.random()

    res = analyze_static(f)
    assert res.unsafe == [] and res.seeded


def test_scope_is_the_users_folder_never_frozen_or_library_code(tmp_path):
    from phasm.discover.examples import load_target
    from phasm.discover.scope import in_scope_predicate

    (tmp_path / "loose_mod.py").write_text("def f(x):\n    return x\n")
    in_scope = in_scope_predicate(load_target(f"{tmp_path / 'loose_mod.py'}:f"))
    assert in_scope(str(tmp_path / "other.py"))
    assert not in_scope("<frozen importlib._bootstrap>") and not in_scope("<string>")  # cwd is tmp_path
    assert not in_scope(np.__file__) and not in_scope(logging.__file__)


def test_comprehension_variables_are_bound_before_the_element_is_read():
    def f(hits, table):
        xs = [h.x for h in hits]
        return {k: v.w for k, v in table.items()}, sum(xs)

    res = analyze_static(f)
    assert "hits[*].x" in names(res.reads)
