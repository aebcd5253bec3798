"""@phasm.surrogate(stochastic=True): capture, a generative model behind the distribution gate, samples per call.

The functions have known laws, so the model's samples are tested against the exact distribution, not
only against more draws of the function.
"""

from __future__ import annotations

import numpy as np
import pytest

import phasm

pytest.importorskip("torch")
pytest.importorskip("sklearn")
stats = pytest.importorskip("scipy.stats")

SMALL = dict(epochs=40, batch_size=200, lr=3e-3, hidden=32, flow_layers=3, threads=1)


def make_walk(store, **kw):
    @phasm.surrogate(store=store, stochastic=True, **kw)
    def walk(steps: float, drift: float, rng: np.random.Generator | None = None) -> float:
        """A random walk's end point: ``round(steps)`` unit normal steps plus a drift per step."""
        rng = np.random.default_rng(rng)
        n = int(round(steps))
        return float(drift * n + rng.standard_normal(n).sum())

    return walk


@pytest.fixture(scope="module")
def trained_walk(tmp_path_factory):
    store = tmp_path_factory.mktemp("walk") / "walk.h5"
    walk = make_walk(store, tolerance=phasm.DistributionTolerance(auc=0.75))
    walk.mode = "capture"
    rng = np.random.default_rng(0)
    draws = np.random.default_rng(1)  # the walk's own generator: each capture a fresh draw, the test repeatable
    for steps, drift in zip(rng.uniform(4, 40, 3000), rng.uniform(-0.5, 0.5, 3000)):
        walk(steps, drift, draws)
    result = walk.train(**SMALL)
    return walk, result


def test_random_argument_is_not_a_model_input_and_the_backend_is_a_flow(trained_walk):
    walk, result = trained_walk
    assert walk.random_argument == "rng"
    assert [v.name for v in walk.spec.inputs] == ["steps", "drift"]
    assert walk.backend == "flow" and walk.model.backend.name == "flow" and result.backend == "flow"


def test_gate_accepts_and_model_samples_follow_the_exact_law(trained_walk):
    walk, result = trained_walk
    assert walk.gate.kind == "distribution" and walk.gate.accepted_, walk.gate.describe()
    assert result.report.auc < 0.75
    walk.mode = "model"
    walk.seed(1)
    draws = np.array([walk(25.0, 0.2) for _ in range(1500)])
    assert len(np.unique(draws)) == len(draws)  # a new sample per call, not a mean
    exact = stats.norm(loc=0.2 * 25, scale=5.0)
    assert stats.kstest(draws, exact.cdf).statistic < 0.08
    assert abs(draws.std() / 5.0 - 1) < 0.1 and abs(draws.mean() - 5.0) < 0.6  # 0.12 sigma


def test_seed_and_generator_argument_make_samples_reproducible(trained_walk, tmp_path):
    walk, _ = trained_walk
    walk.mode = "model"
    walk.seed(3)
    first = [walk(10.0, 0.0) for _ in range(5)]
    walk.seed(3)
    assert [walk(10.0, 0.0) for _ in range(5)] == first
    a = walk(10.0, 0.0, rng=np.random.default_rng(9))
    assert walk(10.0, 0.0, np.random.default_rng(9)) == a and walk(10.0, 0.0, rng=9) == a  # an int seeds a generator
    assert walk(10.0, 0.0, rng=np.random.default_rng(10)) != a
    with pytest.raises(TypeError, match="random argument 'rng': expected a numpy.random.Generator"):
        walk(10.0, 0.0, rng="seven")
    with walk.batching():  # a call passing its generator is answered from it, not queued on the stream
        inside = walk(10.0, 0.0, rng=np.random.default_rng(9))
        queued = walk(10.0, 0.0)
    assert inside == a and isinstance(queued, phasm.Deferred) and float(queued) != a
    walk.save(tmp_path / "model")
    again = make_walk(None, model=tmp_path / "model", mode="model")
    again.seed(3)
    assert [again(10.0, 0.0) for _ in range(5)] == first  # the loaded model draws what the trained one did
    assert again.gate.kind == "distribution" and again.gate.accepted_


def test_auto_mode_runs_the_function_outside_the_trained_domain(trained_walk):
    walk, _ = trained_walk
    walk.mode = "auto"
    walk.reset_stats()
    inside = [walk(20.0, 0.1) for _ in range(20)]
    assert len(set(inside)) == 20
    out = walk(400.0, 0.1, rng=np.random.default_rng(0))  # far outside the captured steps 4..40
    expected = 0.1 * 400 + np.random.default_rng(0).standard_normal(400).sum()
    assert out == pytest.approx(expected)  # the function's own answer, with the same generator
    st = walk.stats
    assert st.fallbacks == 1 and st.model_rows == 20


def test_a_refused_model_answers_nothing(trained_walk, tmp_path):
    walk, _ = trained_walk
    # no continuous sample matches another exactly, so a bound of 0 on the KS distance refuses any model
    strict = make_walk(None, tolerance=phasm.DistributionTolerance(auc=1.0, ks=0.0))
    strict.train(store=walk.store_path, **{**SMALL, "epochs": 3})
    assert not strict.gate.accepted_ and "KS distance of result" in strict.gate.reasons_[0]
    strict.mode = "auto"
    r = strict(20.0, 0.1, rng=np.random.default_rng(4))
    assert r == pytest.approx(0.1 * 20 + np.random.default_rng(4).standard_normal(20).sum())


def test_scipy_sampler_with_parameters(tmp_path):
    """A sampler we did not write: scipy's gamma law, shape and scale given; its samples vs the exact law."""

    @phasm.surrogate(store=tmp_path / "gamma.h5", stochastic=True, batched=True, mode="capture",
                     tolerance=phasm.DistributionTolerance(auc=0.75))
    def gamma(shape: np.ndarray, scale: np.ndarray, random_state=None) -> np.ndarray:
        return stats.gamma.rvs(shape, scale=scale, random_state=random_state)

    rng = np.random.default_rng(5)
    for _ in range(8):
        gamma(rng.uniform(2, 6, 500), rng.uniform(0.5, 2, 500), random_state=rng)
    assert gamma.random_argument == "random_state"
    gamma.train(**SMALL)
    assert gamma.gate.accepted_, gamma.gate.describe()
    gamma.mode = "model"
    y = gamma(np.full(3000, 4.0), np.full(3000, 1.5), random_state=np.random.default_rng(1))
    assert y.shape == (3000,)
    assert stats.kstest(y, stats.gamma(4.0, scale=1.5).cdf).statistic < 0.08
    assert (y > 0).mean() > 0.99


def test_bad_declarations_are_one_line_errors():
    with pytest.raises(TypeError, match="DistributionTolerance"):
        make_walk(None, tolerance=phasm.Tolerance(rel=0.1))
    with pytest.raises(TypeError, match="stochastic=True"):
        phasm.surrogate(lambda x: x, name="f", tolerance=phasm.DistributionTolerance())
    with pytest.raises(ValueError, match="shadow_fraction must be 0"):
        make_walk(None, shadow_fraction=0.1)
    with pytest.raises(ValueError, match="seed\\(\\) is for stochastic"):
        phasm.surrogate(lambda x: x, name="g").seed(1)


def test_a_regression_model_is_refused_for_a_stochastic_function(tmp_path):
    @phasm.surrogate(store=tmp_path / "d.h5", mode="capture")
    def det(x: float) -> float:
        return 2 * x

    for x in np.linspace(0, 1, 40):
        det(float(x))
    det.train(backend="ridge")
    det.save(tmp_path / "m")

    @phasm.surrogate(name=det.name, stochastic=True)
    def det2(x: float) -> float:
        return 2 * x

    with pytest.raises(phasm.BackendError, match="needs a generative model"):
        det2.load(tmp_path / "m")


def test_cli_trains_a_flow_and_info_prints_its_distribution_report(trained_walk, tmp_path):
    from typer.testing import CliRunner

    from phasm.cli import app

    walk, _ = trained_walk
    runner = CliRunner()
    res = runner.invoke(app, ["train", str(walk.store_path), "--out", str(tmp_path / "m"), "--backend", "flow",
                              "--epochs", "3", "-q", "-p", "hidden=16", "-p", "threads=1"])
    assert res.exit_code == 0, res.output
    assert "generator flow" in res.output and "classifier AUC" in res.output
    res = runner.invoke(app, ["info", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert "held-out captures vs generated samples" in res.output and "KS distance" in res.output
    assert "result" in res.output  # the observable's row


def test_retrain_in_a_process_swaps_in_a_new_generator(trained_walk):
    walk, _ = trained_walk
    old = walk.model
    thread = walk.retrain(process=True, epochs=3)
    thread.join(600)
    assert walk.retrain_error is None and walk.model is not old
    assert walk.model.backend.name == "flow" and walk.gate.kind == "distribution"


def test_vae_backend_through_the_surrogate(trained_walk):
    walk, _ = trained_walk
    vae = make_walk(None, backend="vae", mode="model")
    result = vae.train(store=walk.store_path, epochs=5, batch_size=200, threads=1)
    assert vae.model.backend.name == "vae" and result.backend == "vae" and result.report is not None
    assert vae.gate.kind == "range"  # no tolerance: the captured-range gate, as for a deterministic function
    vae.seed(0)
    a = [vae(20.0, 0.1) for _ in range(50)]
    assert len(set(a)) == 50 and np.isfinite(a).all()


def test_report_draws_the_generated_against_the_captured_distribution(trained_walk, tmp_path):
    pytest.importorskip("matplotlib")
    from phasm.report import build_report

    walk, _ = trained_walk
    walk.save(tmp_path / "model")
    html = build_report([tmp_path / "model"], tmp_path / "r.html").read_text()
    assert "Stochastic surrogate: distributions" in html and "within the bound" in html
    assert 'alt="Distribution of result: generated against simulated"' in html
    assert "malformed" not in html
