"""The stochastic gate: acceptance on held-out distributions, per-call domain, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

import phasm
from phasm.gate.registry import gate_from_json
from phasm.gate.distribution import DistributionGate, DistributionTolerance, train_stochastic
from phasm.train.artefact import ModelArtefact
from phasm.train.distributions import DistributionReport

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from phasm.backends.torch_flow import FlowBackend  # noqa: E402  (after the skip: imports torch)

WALK = phasm.Spec.from_declarations("t.walk", {"steps": phasm.Scalar(), "drift": phasm.Scalar()},
                                    {"end": phasm.Scalar()})
SMALL = dict(epochs=30, batch_size=200, lr=3e-3, hidden=32, flow_layers=3, threads=1)


def walk(n, seed=0):
    rng = np.random.default_rng(seed)
    X = np.c_[rng.integers(4, 40, n), rng.uniform(-0.5, 0.5, n)].astype(float)
    return X, (X[:, 0] * X[:, 1] + np.sqrt(X[:, 0]) * rng.standard_normal(n))[:, None]


def report(auc, err=0.01, **kw):
    return DistributionReport(auc=auc, auc_stderr=err, n_rows=1000, **kw)


def test_tolerance_checks_auc_with_its_confidence_and_observables():
    tol = DistributionTolerance(auc=0.7, ks=0.05, mean_rel=0.02, resolution_rel=0.1)
    obs = {"y": {"ks": 0.01, "mean_rel_dev": 0.01}}
    assert tol.check(report(0.6, observables=obs, response={"resolution_max_rel_dev": 0.05})) == (True, [])
    ok, reasons = tol.check(report(0.69, err=0.02, observables={"y": {"ks": 0.2, "mean_rel_dev": 0.1}}))
    assert not ok and len(reasons) == 4
    assert "upper 95% bound 0.723" in reasons[0] and "KS distance of y" in reasons[1]
    assert "no response" in reasons[3]
    assert DistributionTolerance(auc=0.7, confidence=None).check(report(0.69, err=0.02))[0]


@pytest.mark.parametrize("kw,match", [(dict(auc=0.4), "auc must be in"), (dict(ks=-1), "ks must be >= 0"),
                                      (dict(confidence=1.0), "confidence must be in")])
def test_tolerance_refuses_bad_bounds(kw, match):
    with pytest.raises(ValueError, match=match):
        DistributionTolerance(**kw)


def test_gate_refused_answers_nothing_accepted_answers_the_domain():
    X = np.random.default_rng(0).uniform(0, 1, (400, 2))
    inside, outside = np.array([[0.5, 0.5]]), np.array([[3.0, 0.5]])
    refused = DistributionGate(DistributionTolerance(auc=0.6)).fit(report(0.9), X)
    assert not refused.accepted_ and not refused.accept(inside, np.zeros((1, 1)), None).any()
    accepted = DistributionGate().fit(report(0.55), X)
    assert accepted.accept(np.r_[inside, outside, [[np.nan, 0.5]]], np.zeros((3, 1)), None).tolist() == [True, False, False]
    assert not accepted.accept(inside, np.array([[np.inf]]), None).any()
    back = gate_from_json(json.loads(json.dumps(accepted.to_json())))
    assert isinstance(back, DistributionGate) and back.accepted_ and back.tolerance == accepted.tolerance
    assert back.accept(np.r_[inside, outside], np.zeros((2, 1)), None).tolist() == [True, False]
    assert "accepted" in back.describe() and "refused" in refused.describe()


def test_gate_record_is_checked():
    X = np.random.default_rng(0).uniform(0, 1, (50, 1))
    rec = DistributionGate().fit(report(0.5), X).to_json()
    rec["accepted"] = "yes"
    with pytest.raises(ValueError, match="accepted must be true or false"):
        DistributionGate.from_json(rec)


def test_train_stochastic_accepts_a_good_generator_and_stores_gate_and_report(tmp_path):
    art, result, gate = train_stochastic(walk(2000), WALK, DistributionTolerance(auc=0.7), **SMALL)
    assert gate.accepted_, gate.reasons_
    assert result.report.n_rows == art.training["held_out_rows"] > 400
    path = art.save(tmp_path / "m")
    meta = json.loads((path / "phasm.json").read_text())
    assert meta["gate"]["kind"] == "distribution" and meta["distribution"]["auc"] == result.report.auc
    loaded = ModelArtefact.load(path, expect_spec=WALK)
    assert gate_from_json(loaded.sections["gate"]).accepted_


class TooWide(FlowBackend):
    """A flow whose samples spread three times as far from their mean as they should."""

    def _sample(self, X, rng):
        y = super()._sample(X, rng)
        return 3 * y - 2 * self.coding_.decode(np.zeros_like(y), X)  # decode(0): the centring's mean


def test_train_stochastic_refuses_a_generator_with_the_wrong_spread():
    X, Y = walk(2000)
    art, result, gate = train_stochastic((X, Y), WALK, DistributionTolerance(auc=0.7), backend=TooWide(**SMALL))
    assert result.report.auc > 0.7  # the best possible classifier: 1 - 2 atan(1/3) / pi = 0.795
    assert not gate.accepted_ and "classifier AUC" in gate.reasons_[0]
    assert not gate.accept(X[:5], Y[:5], art).any()


def test_train_stochastic_needs_enough_rows():
    with pytest.raises(ValueError, match="too few to train and test"):
        train_stochastic(walk(20), WALK, DistributionTolerance(), **SMALL)
    with pytest.raises(TypeError, match="must be a phasm.DistributionTolerance"):
        train_stochastic(walk(200), WALK, phasm.Tolerance(), **SMALL)
