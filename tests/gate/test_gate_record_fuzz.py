"""A tampered or truncated gate record in phasm.json is refused with a phasm error, or loads into a gate that works.

Never another exception, never a gate that crashes on its first call.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import phasm
from phasm.errors import PhasmError
from phasm.gate import gate_from_json, train_calibrated

SPEC = phasm.Spec.from_declarations("t.expcos", {"a": phasm.Scalar(), "b": phasm.Scalar()}, {"y": phasm.Scalar()})


@pytest.fixture(scope="module")
def fitted():
    A = np.random.default_rng(0).uniform(0, 1, (3000, 2))
    Y = (np.exp(A[:, 0]) * np.cos(A[:, 1]) + 1)[:, None]
    art, _, gate = train_calibrated((A, Y), SPEC, phasm.Tolerance(rel=1e-3, max_miss_rate=0.05), backend="ensemble",
                                    member="ridge", k=3, member_params={"degree": 3}, region_levels=(0.02, 0.3))
    return art, json.loads(json.dumps(gate.to_json()))


def _paths(rec: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for k, v in rec.items():
        if k in ("kind", "spec"):  # the kind picks the class (base registry); the spec has its own checks
            continue
        out.append(prefix + (k,))
        if isinstance(v, dict) and k in ("partition", "domain", "tolerance"):
            out += _paths(v, prefix + (k,))
    return out


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8) | st.sampled_from(["inf", "-inf", "nan", "edge", "distance", "knn"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12)


@pytest.mark.filterwarnings("ignore:overflow encountered")  # absurd tolerances give infinite scores: rejected
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_tampered_gate_records(fitted, data) -> None:
    art, rec = fitted
    rec = copy.deepcopy(rec)
    path = data.draw(st.sampled_from(_paths(rec)))
    node = rec
    for key in path[:-1]:
        node = node[key]
    if data.draw(st.booleans()):
        del node[path[-1]]
    else:
        node[path[-1]] = data.draw(json_values)
    try:
        gate = gate_from_json(rec)
    except PhasmError:
        return
    X = np.random.default_rng(1).uniform(-0.2, 1.2, (64, 2))
    try:
        Y, trusted = gate.predict_accept(X, art)
    except PhasmError:
        return
    assert trusted.dtype == bool and trusted.shape == (64,) and Y.shape == (64, 1)
