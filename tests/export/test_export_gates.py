"""Exported gates decide as Python's: compiled by the system compiler, called through ctypes, compared row by row."""

from __future__ import annotations

import numpy as np
import pytest
from export_helpers import SPEC2, build, compilers, expcos

import phasm
from phasm.export import compare, sample_rows
from phasm.gate import ConformalGate, DomainGate, train_calibrated
from phasm.train import ModelArtefact, fit_model

CCS = compilers()
needs_cc = pytest.mark.skipif(not CCS, reason="no C compiler on this machine: the generated code cannot be compiled here")


@pytest.fixture(scope="module")
def ridge_ensemble(tmp_path_factory):
    """5 ridge members, gate certified with the spread+residual score (kNN domain), saved and reloaded."""
    tol = phasm.Tolerance(rel=1e-3, max_miss_rate=0.01)
    art, _, gate = train_calibrated(expcos(6000, 0), SPEC2, tol, backend="ensemble", member="ridge", k=5,
                                    member_params={"degree": 3})
    assert gate.score_ == "spread+residual" and gate.report_.certified
    path = tmp_path_factory.mktemp("models") / "ens"
    art.save(path)
    return path


@needs_cc
@pytest.mark.parametrize("cc", CCS)
def test_ensemble_spread_residual_gate_decides_as_python(ridge_ensemble, cc, tmp_path) -> None:
    art = ModelArtefact.load(ridge_ensemble)
    native = build(ridge_ensemble, cc, out=tmp_path)
    X = sample_rows(art, 10000, seed=3)
    res = compare(art, native, X)
    assert res.decisions_equal >= 0.999, res
    assert 0.3 < res.c_accepted < 0.95, res  # the gate does something on in-range rows
    assert res.max_rel_error <= 1e-6 and res.gated_max_rel_error <= 1e-6, res  # ridge in float64, as Python
    # Far outside the captured range: rejected by both.
    far = np.array([[2.0, 0.5], [0.5, -1.0], [10.0, 10.0]])
    assert not native.predict(far, 1)[1].any()


@needs_cc
def test_non_finite_and_huge_inputs_always_fall_back(ridge_ensemble, tmp_path) -> None:
    native = build(ridge_ensemble, CCS[0], out=tmp_path)
    bad = np.array([[np.nan, 0.5], [0.5, np.inf], [-np.inf, 0.5], [1e300, 0.5], [0.5, -1e39]])
    Y, acc = native.predict(bad, 1)
    assert not acc.any()
    for row in bad:
        assert native.predict_one(row, 1)[1] is False
    _, finite = native.model(bad, 1)
    assert not finite.any()


@needs_cc
@pytest.mark.parametrize("score, rel", [("residual", 2e-3), ("distance", 5e-3)])
def test_single_model_gates(score, rel, tmp_path) -> None:
    tol = phasm.Tolerance(rel=rel, max_miss_rate=0.02)
    art, _, gate = train_calibrated(expcos(4000, 1), SPEC2, tol, backend="ridge", degree=3, score=score)
    assert gate.score_ == score and gate.report_.certified
    native = build(art, CCS[0], out=tmp_path)
    res = compare(art, native, sample_rows(art, 5000, seed=4))
    assert res.decisions_equal >= 0.999 and res.max_rel_error <= 1e-6, res
    assert res.c_accepted > 0.2, res


@needs_cc
def test_mahalanobis_domain_and_vector_outputs(tmp_path) -> None:
    """More inputs than a kNN domain takes, an array output: the Mahalanobis distance and per-variable spread."""
    spec = phasm.Spec.from_declarations("t.vec", {"x": phasm.Array((20,))}, {"y": phasm.Array((3,)), "s": phasm.Scalar()})
    X = np.random.default_rng(0).normal(size=(4000, 20))
    Y = np.c_[X[:, :3] * 2 + 1, X.sum(1, keepdims=True) + 5]
    tol = phasm.Tolerance(rel=0.05, max_miss_rate=0.05, per_output={"s": (None, 0.5)})
    art, _, gate = train_calibrated((X, Y), spec, tol, backend="ensemble", member="ridge", k=3, member_params={"degree": 1})
    assert gate.domain.metric_ == "mahalanobis" and gate.score_ == "spread"
    native = build(art, CCS[0], out=tmp_path)
    Xt = np.random.default_rng(1).normal(size=(3000, 20)) * np.r_[np.full(10, 1.0), np.full(10, 1.6)]
    res = compare(art, native, Xt)
    assert res.decisions_equal >= 0.999 and res.max_rel_error <= 1e-5, res
    assert 0.05 < res.c_accepted < 0.999, res


@needs_cc
def test_domain_gate_alone_and_no_gate(tmp_path) -> None:
    X, Y = expcos(3000, 2)
    art, _ = fit_model((X, Y), SPEC2, backend="ridge", degree=2)
    domain = DomainGate().fit(X[:2000], X[2000:])
    native = build(art, CCS[0], out=tmp_path / "d", gate=domain.to_json())
    res = compare(art, native, sample_rows(art, 4000) * 1.3 - 0.15, gate=domain)
    assert res.decisions_equal >= 0.999 and 0.3 < res.c_accepted < 0.99, res
    # No gate: every finite answer is trusted, NaN never.
    native = build(art, CCS[0], out=tmp_path / "f", prefix="f")
    Y_c, acc = native.predict(np.array([[0.5, 0.5], [5.0, -3.0], [np.nan, 0.1]]), 1)
    assert acc.tolist() == [True, True, False]
    assert abs(Y_c[0, 0] - art.predict(np.array([[0.5, 0.5]], np.float32))[0, 0]) < 1e-5


def test_uncertified_gate_accepts_nothing(tmp_path) -> None:
    """A gate that could not be certified (threshold -inf) sends every call to the original, in C as in Python."""
    if not CCS:
        pytest.skip("no C compiler on this machine: the generated code cannot be compiled here")
    tol = phasm.Tolerance(rel=1e-9, max_miss_rate=0.001)
    art, _, gate = train_calibrated(expcos(1500, 5), SPEC2, tol, backend="ridge", degree=1)
    assert not gate.report_.certified
    native = build(art, CCS[0], out=tmp_path)
    assert not native.predict(sample_rows(art, 500), 1)[1].any()
    assert "NOT certified" in (tmp_path / "m.h").read_text()


def test_ensemble_members_are_gated_as_python(tmp_path) -> None:
    """The gate's answer is the members' mean in the caller's units, the same float32 arithmetic as Python's."""
    if not CCS:
        pytest.skip("no C compiler on this machine: the generated code cannot be compiled here")
    tol = phasm.Tolerance(rel=2e-3, max_miss_rate=0.02)
    art, _, gate = train_calibrated(expcos(4000, 6), SPEC2, tol, backend="ensemble", member="ridge", k=3,
                                    member_params={"degree": 3})
    assert gate.report_.certified
    native = build(art, CCS[0], out=tmp_path)
    X = sample_rows(art, 2000, seed=7)
    Y_py, acc_py = gate.predict_accept(X.astype(np.float32), art)
    Y_c, acc_c = native.predict(X, 1)
    both = acc_py & acc_c
    assert both.sum() > 100
    np.testing.assert_array_equal(Y_c[both], np.asarray(Y_py, np.float64)[both])
    assert isinstance(gate, ConformalGate)


@needs_cc
def test_per_region_gate_decides_as_python(tmp_path) -> None:
    """A gate certified per region (edge bands over the one input that matters, and distance bands),
    with per-output tolerances: the C gate picks each call's region threshold as Python does."""
    spec = phasm.Spec.from_declarations("t.sqrt2", {"a": phasm.Scalar(), "b": phasm.Scalar()},
                                        {"y": phasm.Scalar(), "z": phasm.Scalar()})
    A = np.random.default_rng(0).uniform(0, 1, (16000, 2))
    Y = np.c_[np.sqrt(A[:, 0] + 0.01) * (1 + 0.1 * np.sin(3 * A[:, 1])), 0.01 * np.cos(5 * A[:, 1])]
    tol = phasm.Tolerance(rel={"y": 1e-2}, abs={"z": 2e-4}, max_miss_rate=0.02)
    art, _, gate = train_calibrated((A, Y), spec, tol, backend="ensemble", member="ridge", k=3,
                                    member_params={"degree": 6}, regions="edge+distance")
    part = gate.regions_
    assert part.kind == "edge+distance" and part.n_bands > 2 and part.edge_features_.tolist() == [0]
    assert len(set(gate.thresholds_.tolist())) > 1  # the regions really differ
    native = build(art, CCS[0], out=tmp_path)
    X = np.r_[sample_rows(art, 6000, seed=5), np.c_[np.random.default_rng(6).uniform(0, 0.01, 2000),
                                                     np.random.default_rng(7).uniform(0, 1, 2000)]]
    res = compare(art, native, X)
    assert res.decisions_equal >= 0.999, res
    assert 0.2 < res.c_accepted < 0.98, res


def expcos_call(a: float, b: float) -> float:
    return float(np.exp(a) * np.cos(b) + 1)


@needs_cc
def test_range_gate_of_a_model_trained_without_tolerance(tmp_path) -> None:
    """The quickstart's model (no tolerance: the default RangeGate) exports; C refuses what Python refuses."""
    f = phasm.surrogate(expcos_call, name="t.expcos_call", store=tmp_path / "c.h5", backend="ridge", mode="capture")
    for a, b in np.random.default_rng(7).uniform(0, 1, (1500, 2)):
        f(float(a), float(b))
    f.train(degree=2)
    f.save(tmp_path / "model")
    art = ModelArtefact.load(tmp_path / "model")
    assert art.sections["gate"]["kind"] == "range"
    native = build(tmp_path / "model", CCS[0], out=tmp_path / "native")
    res = compare(art, native, sample_rows(art, 4000, seed=8) * 1.3 - 0.15)
    assert res.decisions_equal == 1.0 and 0.3 < res.c_accepted < 0.99, res
    assert res.gated_max_rel_error <= 1e-6, res
    assert native.predict(np.array([[0.5, 0.5], [0.5, 3.0], [np.nan, 0.5]]), 1)[1].tolist() == [True, False, False]
    assert "the captured range only, no miss-rate certificate" in (tmp_path / "native" / "m.h").read_text()
