"""The proposed spec for the heat example reproduces its hand-written one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from phasm.discover import inspect_function, proposed_code, proposed_spec
from phasm.discover.examples import load_target

HEAT = Path(__file__).resolve().parents[2] / "examples" / "heat" / "heat.py"


@pytest.fixture(scope="module")
def heat_inspection():
    if not HEAT.exists():  # pragma: no cover - the example ships with the repository
        pytest.skip("examples/heat/heat.py not present")
    fn = load_target(f"{HEAT}:heat")  # a Surrogate: inspect unwraps it
    mod = __import__(fn.__module__)
    n = mod.N
    f = mod.random_sources(1, n, seed=3)[0]
    u = np.zeros((n, n))
    ins = inspect_function(fn, [((f, u), {})])
    assert not u.any()  # the caller's array is untouched
    return fn, n, ins


def test_heat_classification(heat_inspection):
    fn, n, ins = heat_inspection
    assert ins.kinds() == {"f": "in", "u": "inout", "global:heat.CHECK_EVERY": "in"}
    assert ins.by_name("u").shape == (n, n) and ins.by_name("f").dtype == "float64"
    assert ins.flags == [] and ins.disagreements == []
    assert "heat.solve" in ins.calls


def test_heat_proposed_spec_matches_hand_written(heat_inspection):
    fn, n, ins = heat_inspection
    spec = proposed_spec(ins)
    hand = fn.spec  # inputs={"f": Array((N, N))}, outputs={"u": Array((N, N), direction="inout")}
    assert spec.hash == hand.hash
    assert [(v.name, v.shape, v.direction, repr(v.optic)) for v in spec.variables] == [
        (v.name, v.shape, v.direction, repr(v.optic)) for v in hand.variables]
    code = proposed_code(ins)
    assert f'"f": phasm.Array(({n}, {n})),' in code
    assert f'"u": phasm.Array(({n}, {n}), direction=\'inout\'),' in code


def test_heat_batch_proposal_with_batched(heat_inspection):
    fn, n, _ = heat_inspection
    mod = __import__(fn.__module__)
    f = mod.random_sources(2, n, seed=1)
    ins = inspect_function(mod.heat_batch, [((f, np.zeros((2, n, n))), {})], batched=True)
    assert ins.kinds() == {"f": "in", "u": "inout", "global:heat.CHECK_EVERY": "in"}
    assert ins.by_name("u").shape == (2, n, n)  # as observed
    spec = proposed_spec(ins)
    assert spec.batched and spec.hash == mod.heat_batch.spec.hash  # per call: (n, n)
    assert "    batched=True," in proposed_code(ins)
