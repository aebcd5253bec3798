"""Traced stand-ins and the dynamic analysis on its own: semantics kept, accesses logged."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from phasm.discover.dynamic import diff, trace_call
from phasm.discover.paths import render
from phasm.discover.tracing import Instrumenter, Recorder, TracedArray


def kinds(fn, *args):
    res = trace_call(fn, args, {}, purity=False)
    return {render(p): a.kind for p, a in res.accesses.items()}


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.integers(2, 12), elements=st.floats(-1e3, 1e3)), st.data())
def test_traced_array_computes_like_numpy(a, data):
    """Whatever the ops, a traced array gives numpy's answers and numpy's in-place effects."""
    i = data.draw(st.integers(0, a.size - 1))
    j = data.draw(st.integers(i, a.size))
    rec = Recorder()
    t = Instrumenter(rec).instrument(a.copy(), (("arg", "a"),))
    plain = a.copy()
    with rec:
        for x in (t, plain):
            x[i:j] += 1.5
            x[i] = x[j - 1] * 2 if j > i else x[i]
            np.multiply(x, 0.5, out=x)
            x[::2] = np.sqrt(np.abs(x[::2]))
        s_t, s_p = float(t.sum()), float(plain.sum())
    assert isinstance(t, TracedArray)
    assert np.array_equal(t.view(np.ndarray), plain) and s_t == s_p


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 10), st.data())
def test_read_before_write_decides_in_out_inout(n, data):
    """An array whose first access to some element is a read is an input; written first everywhere: an output."""
    k = data.draw(st.integers(0, n - 1))

    def write_then_read(a):
        a[:] = 1.0
        return a[k] + 1

    def read_then_write(a):
        v = a[k]
        a[:] = v

    def read_only_part(a):
        return a[: k + 1].sum()

    assert kinds(write_then_read, np.zeros(n))["a"] == "out"
    assert kinds(read_then_write, np.arange(n, dtype=float) + 1)["a"] == "inout"
    assert kinds(read_only_part, np.zeros(n))["a"] == "in"


def test_partial_write_then_read_of_unwritten_part_is_inout():
    def boundary_then_interior(u):
        u[0] = 0.0
        u[1:] = u[:-1] + 1.0  # reads u[1:-1], which the call did not write: the caller's data

    assert kinds(boundary_then_interior, np.ones(5))["u"] == "inout"


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.integers(1, 8), elements=st.floats(-10, 10)), st.data())
def test_diff_finds_exactly_the_changed_paths(a, data):
    idx = data.draw(st.lists(st.integers(0, a.size - 1), max_size=3))
    b = a.copy()
    for i in idx:
        b[i] += 1.0
    before = {"x": a, "items": [1.0, 2.0], "n": 3}
    after = {"x": b, "items": [1.0, 2.0], "n": 3}
    out: dict = {}
    diff(before, after, (("arg", "s"),), out)
    assert set(map(render, out)) == ({"s['x']"} if idx else set())


def test_list_mutation_and_length():
    def push(xs, v):
        xs.append(v)

    def total(xs):
        return sum(xs)

    def reset(xs):
        xs.clear()
        xs.extend([0.0, 0.0])

    assert kinds(push, [1.0, 2.0], 3.0) == {"xs": "inout", "v": "in"}  # the result keeps what was there
    assert kinds(reset, [1.0, 2.0, 3.0]) == {"xs": "out"}  # cleared first: the old content does not matter
    k = kinds(total, [1.0, 2.0])
    assert k["xs[*]"] == "in" and k["return"] == "out"


def test_methods_of_traced_objects_are_traced_through_self():
    class Body:
        def __init__(self):
            self.m = 2.0
            self.v = 1.0

        def momentum(self):
            return self.m * self.v

    def f(b):
        return b.momentum()

    res = trace_call(f, (Body(),), {}, purity=False)
    k = {render(p): a.kind for p, a in res.accesses.items()}
    assert k["b.m"] == "in" and k["b.v"] == "in"
    assert "momentum" in res.accesses[(("arg", "b"),)].methods


def test_nondeterminism_detected_by_purity_runs():
    def noisy(x):
        return x + np.random.random()

    np.random.seed(7)
    expected = np.random.random()
    np.random.seed(7)
    res = trace_call(noisy, (1.0,), {})
    assert res.nondeterministic == ["return"]
    assert np.random.random() == expected  # inspection left the global random state as it found it
    assert [f[:2] for f in res.flags] == [("random", "numpy.random (global random state consumed)")]


def test_hidden_state_in_a_closure_is_an_inout_not_noise():
    import itertools

    counter = itertools.count()

    def leaky(x):
        return x + next(counter)

    res = trace_call(leaky, (1.0,), {})
    k = {render(p): a.kind for p, a in res.accesses.items()}
    assert k["closure:counter"] == "inout"  # state carried between calls: it is an input and an output
    assert res.nondeterministic == []  # each run starts from a copy of the same state
    assert next(counter) == 0  # and the caller's counter was not advanced


def test_cyclic_and_widely_shared_structures_are_compared_once():
    class Node:
        def __init__(self, parent=None):
            self.parent = parent
            self.children = []
            self.value = 0.0

    root = Node()
    for _ in range(12):
        child = Node(root)
        root.children.append(child)
        child.children = [Node(child) for _ in range(12)]

    def touch_leaf(tree):
        tree.children[3].children[5].value = 1.0

    res = trace_call(touch_leaf, (root,), {})
    k = {render(p): a.kind for p, a in res.accesses.items()}
    assert k["tree.children[*].children[*].value"] == "out"
    assert root.children[3].children[5].value == 0.0


def test_uncopyable_argument_is_used_as_is_and_said_so():
    import threading

    class Holder:
        def __init__(self):
            self.lock = threading.Lock()  # locks cannot be deep-copied
            self.value = 2.0

    def f(h, x):
        with h.lock:
            return h.value * x

    h = Holder()
    res = trace_call(f, (h, 3.0), {})
    assert res.error is None and any("cannot be deep-copied" in n for n in res.notes)
    assert type(h) is Holder and type(h.value) is float  # not instrumented, not changed
    assert {render(p): a.kind for p, a in res.accesses.items()}["x"] == "in"
