"""A certified trust gate for variable-length inputs: trained, certified, saved, loaded, and used in auto mode."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

import phasm  # noqa: E402
from phasm.gate import RaggedConformalGate  # noqa: E402


class Hit:
    def __init__(self, e: float) -> None:
        self.e = e


def total_energy(hits: list) -> float:
    """Energy-weighted mean of hit energies: a permutation-invariant set function of the hits."""
    e = np.array([h.e for h in hits])
    return float((e * e).sum() / e.sum())


def events(n: int, seed: int, scale: float = 1.0) -> list[list[Hit]]:
    rng = np.random.default_rng(seed)
    return [[Hit(float(e)) for e in rng.uniform(0.5, 1.5, rng.integers(2, 7)) * scale] for _ in range(n)]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ragged-gate")
    fn = phasm.surrogate(total_energy, name="tests.total_energy", store=tmp / "e.h5", mode="capture",
                         inputs={"hits": phasm.each("hits", fields=["e"], max_len=8)},
                         outputs={"E": phasm.Scalar()},
                         tolerance=phasm.Tolerance(rel=0.01, max_miss_rate=0.05))
    for hits in events(2400, seed=0):
        fn(hits)
    fn.train(epochs=40, seed=0)
    return fn, tmp


def test_gate_is_certified_and_trusts_in_distribution_calls(calibrated):
    fn, _ = calibrated
    assert isinstance(fn.gate, RaggedConformalGate)
    assert fn.calibration.certified and fn.calibration.miss_rate_bound <= 0.05
    fn.mode = "auto"
    fn.reset_stats()
    test = events(300, seed=1)
    answers = [fn(h) for h in test]
    truth = np.array([total_energy(h) for h in test])
    rel = np.abs(np.array(answers) - truth) / truth
    st = fn.stats
    assert st.fallback_rate < 0.5  # most calls are answered by the model
    # among all answers (model or original), the miss rate stays near the bound
    assert (rel > 0.01).mean() <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / len(test))


def test_far_out_of_domain_calls_fall_back_to_the_exact_answer(calibrated):
    fn, _ = calibrated
    fn.mode = "auto"
    fn.reset_stats()
    far = events(50, seed=2, scale=3.0)  # energies up to 3x beyond any captured one
    answers = [fn(h) for h in far]
    assert answers == [total_energy(h) for h in far]  # every one from the original
    assert fn.stats.fallbacks == 50


def test_gate_survives_save_and_load(calibrated):
    fn, tmp = calibrated
    path = fn.save(tmp / "model")
    other = phasm.surrogate(total_energy, name="tests.total_energy2",
                            inputs={"hits": phasm.each("hits", fields=["e"], max_len=8)},
                            outputs={"E": phasm.Scalar()}, model=path, mode="auto")
    assert isinstance(other.gate, RaggedConformalGate)
    assert other.calibration.miss_rate_bound == fn.calibration.miss_rate_bound
    hits = events(1, seed=3)[0]
    fn.mode = "auto"
    assert other(hits) == fn(hits)
