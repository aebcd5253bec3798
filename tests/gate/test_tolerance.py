"""Per-output tolerances, the relative error with an absolute floor, and errors that name the variable."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import phasm
from phasm.errors import GateError
from phasm.gate import Tolerance, gate_from_json, train_calibrated
from phasm.train import ModelArtefact

SPEC3 = phasm.Spec.from_declarations("t.kin", {"a": phasm.Scalar(), "b": phasm.Scalar()},
                                     {"tau": phasm.Scalar(), "T": phasm.Scalar(), "x": phasm.Array((2,))})
finite = st.floats(-1e6, 1e6, allow_nan=False)


def test_per_output_limits_are_applied_to_their_output_only() -> None:
    tol = Tolerance(rel={"tau": 0.05, "T": 0.01}, abs={"x": 1e-3})
    assert tol.check(SPEC3) is tol
    assert (tol.limits("tau"), tol.limits("T"), tol.limits("x")) == ((0.05, None), (0.01, None), (None, 1e-3))
    true = np.array([[1.0, 100.0, 0.0, 0.0]] * 4)
    pred = true.copy()
    pred[0, 0] = 1.04      # tau 4% off: within 5%
    pred[1, 0] = 1.06      # tau 6% off: a miss
    pred[2, 1] = 101.5     # T 1.5% off: a miss (T's limit is 1%)
    pred[3, 2:] = [5e-4, -9e-4]  # x near zero: within the absolute 1e-3 on every element
    assert tol.misses(SPEC3, true, pred).tolist() == [False, True, True, False]
    pred[3, 3] = 2e-3
    assert tol.misses(SPEC3, true, pred)[3]


def test_scalar_and_mapping_combine_and_per_output_overrides() -> None:
    tol = Tolerance(rel=0.01, abs={"x": 1e-3})           # rel for every output, an abs floor on x
    assert tol.limits("tau") == (0.01, None) and tol.limits("x") == (0.01, 1e-3)
    tol = Tolerance(rel={"tau": 0.05}, abs=1e-6, per_output={"T": (0.02, None)})
    assert tol.limits("tau") == (0.05, 1e-6) and tol.limits("T") == (0.02, None) and tol.limits("x") == (None, 1e-6)


@settings(max_examples=200, deadline=None)
@given(finite, finite, st.floats(0, 1), st.floats(0, 10))
def test_rel_with_abs_floor_is_max_of_the_two(t: float, p: float, rel: float, floor: float) -> None:
    # For a scalar output: within tolerance exactly when |pred - true| <= max(abs, rel * |true|).
    spec = phasm.Spec.from_declarations("t.s", {"a": phasm.Scalar()}, {"y": phasm.Scalar()})
    miss = Tolerance(rel=rel, abs=floor).misses(spec, np.array([[t]]), np.array([[p]]))[0]
    e, allowed = abs(p - t), max(floor, rel * abs(t))
    if not np.isclose(e, allowed, rtol=1e-9, atol=1e-12):  # away from float rounding at the boundary
        assert miss == (e > allowed)


def test_near_zero_truth_with_only_rel_always_misses_and_the_floor_fixes_it() -> None:
    spec = phasm.Spec.from_declarations("t.s", {"a": phasm.Scalar()}, {"y": phasm.Scalar()})
    true, pred = np.array([[0.0], [1e-9]]), np.array([[1e-12], [2e-9]])
    assert Tolerance(rel=0.01).misses(spec, true, pred).all()
    assert not Tolerance(rel=0.01, abs=1e-8).misses(spec, true, pred).any()


@pytest.mark.parametrize("kw, message", [
    (dict(rel={"tau": -0.1}), "rel for output 'tau' must be a finite number >= 0, got -0.1"),
    (dict(rel={"tau": "5%"}), "rel for output 'tau' must be a finite number >= 0, got '5%' \\(str\\)"),
    (dict(abs={"x": float("nan")}), "abs for output 'x' must be a finite number >= 0, got nan"),
    (dict(rel=True), "rel must be a finite number >= 0, got True"),
    (dict(rel=float("inf")), "rel must be a finite number >= 0, got inf"),
    (dict(rel={3: 0.1}), "rel keys must be output variable names, got 3"),
    (dict(rel=None, abs=None), "give rel=, abs= or per_output="),
    (dict(per_output={"T": (None, None)}), "per_output\\['T'\\] gives neither rel nor abs"),
    (dict(per_output={"T": 0.1}), "per_output\\['T'\\] must be a pair"),
    (dict(max_miss_rate=1.5), "max_miss_rate must be in \\[0, 1\\), got 1.5"),
])
def test_bad_values_name_the_variable(kw: dict, message: str) -> None:
    with pytest.raises(GateError, match=message):
        Tolerance(**kw)


def test_names_are_checked_against_the_spec() -> None:
    with pytest.raises(GateError, match="output 'tua' is not an output of t.kin \\(outputs: tau, T, x\\)"):
        Tolerance(rel={"tua": 0.05, "T": 0.01}, abs={"x": 1e-3}).check(SPEC3)
    with pytest.raises(GateError, match="output 'x' of t.kin has no tolerance; give rel= or abs= for it"):
        Tolerance(rel={"tau": 0.05, "T": 0.01}).check(SPEC3)
    with pytest.raises(GateError, match="output 'y' is not an output"):
        Tolerance(rel=0.01, per_output={"y": (0.1, None)}).check(SPEC3)


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.none(), st.floats(0, 10), st.dictionaries(st.sampled_from(["tau", "T", "x"]), st.floats(0, 10))),
       st.one_of(st.none(), st.floats(0, 10), st.dictionaries(st.sampled_from(["tau", "T", "x"]), st.floats(0, 10))),
       st.floats(0, 0.99))
def test_json_round_trip(rel, abs_, alpha) -> None:
    try:
        tol = Tolerance(rel=rel, abs=abs_, max_miss_rate=alpha)
    except GateError:
        return  # neither limit given
    back = Tolerance.from_json(json.loads(json.dumps(tol.to_json())))
    assert back == tol
    assert all(back.limits(n) == tol.limits(n) for n in ("tau", "T", "x"))


def test_per_output_tolerance_is_certified_stored_and_reloaded(tmp_path) -> None:
    A = np.random.default_rng(0).uniform(0, 1, (6000, 2))
    # tau spans decades and is never near zero; x crosses zero, so only an absolute limit makes sense there.
    Y = np.c_[np.exp(4 * A[:, :1]), 300 + 50 * A[:, 1:], np.sin(6 * A) * 0.01]
    tol = Tolerance(rel={"tau": 0.01, "T": 1e-3}, abs={"x": 2e-4}, max_miss_rate=0.05)
    art, _, gate = train_calibrated((A, Y), SPEC3, tol, backend="ensemble", member="ridge", k=3,
                                    member_params={"degree": 5})
    assert gate.report_.certified
    B = np.random.default_rng(1).uniform(0.05, 0.95, (4000, 2))
    T = np.c_[np.exp(4 * B[:, :1]), 300 + 50 * B[:, 1:], np.sin(6 * B) * 0.01]
    Yp, acc = gate.predict_accept(B, art)
    assert acc.mean() > 0.5 and tol.misses(SPEC3, T, Yp)[acc].mean() <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / acc.sum())
    path = art.save(tmp_path / "m")
    rec = json.loads((path / "phasm.json").read_text())["gate"]["tolerance"]
    assert rec == {"rel": {"tau": 0.01, "T": 1e-3}, "abs": {"x": 2e-4}, "max_miss_rate": 0.05, "per_output": {}}
    back = gate_from_json(ModelArtefact.load(path, expect_spec=SPEC3).sections["gate"])
    assert back.tolerance == tol


def test_unknown_output_name_is_refused_before_training(tmp_path) -> None:
    fn = phasm.surrogate(lambda a, b: (a * b, a + b), name="t.two", store=tmp_path / "two.h5", mode="capture",
                         inputs={"a": phasm.Scalar(), "b": phasm.Scalar()},
                         outputs={"p": phasm.Scalar(), "s": phasm.Scalar()},
                         tolerance=Tolerance(rel={"p": 0.01, "sum": 0.01}))
    for a, b in np.random.default_rng(0).uniform(1, 2, (50, 2)):
        fn(float(a), float(b))
    with pytest.raises(GateError, match="output 'sum' is not an output of t.two \\(outputs: p, s\\)"):
        fn.train(backend="ridge")
