"""fn.report(path) on live surrogates, a store without a model, the stochastic slot, and the gate's curve."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import phasm
from page_checks import network_references, parse
from phasm.errors import ReportError
from phasm.report import build_report
from phasm.report.evaluate import threshold_curve


def _wave(a: float, b: float) -> float:
    return math.sin(a) * math.exp(0.3 * b)


def test_fn_report_shows_the_counters_of_this_process(tmp_path: Path) -> None:
    fn = phasm.surrogate(_wave, store=tmp_path / "w.h5", backend="ridge",
                         tolerance=phasm.Tolerance(rel=0.02, abs=1e-3, max_miss_rate=0.05), shadow_fraction=0.3)
    fn.mode = "capture"
    rng = np.random.default_rng(1)
    for a, b in rng.uniform(0, 3, (1200, 2)):
        fn(float(a), float(b))
    fn.train(degree=5)
    fn.mode = "auto"
    for a, b in rng.uniform(0, 3.3, (300, 2)):  # some beyond the captured range: they fall back
        fn(float(a), float(b))
    stats = fn.stats
    assert stats.fallbacks > 0 and stats.shadow_rows > 0
    page_path = fn.report(tmp_path / "w.html")
    assert page_path == tmp_path / "w.html"
    html = page_path.read_text()
    page = parse(html)
    assert {s for _, s in page.sections} == {"spec", "data", "training", "accuracy", "gate", "production"}
    assert network_references(html) == [] and all(i["alt"] for i in page.images)
    assert "Counters of the live surrogate in this process" in html
    assert f"<td>{stats.fallbacks}</td>" in html.replace('<td class="num">', "<td>")
    assert f"{stats.shadow_rows} / {stats.shadow_misses}" in html
    assert "live surrogate (this process)" in html


def test_a_store_without_a_model_reports_its_data(tmp_path: Path) -> None:
    fn = phasm.surrogate(_wave, store=tmp_path / "w.h5", mode="capture")
    for a in np.linspace(0.1, 3, 50):
        fn(float(a), 2.0)
    fn.close()
    html = build_report([tmp_path / "w.h5"], tmp_path / "r.html").read_text()
    assert {s for _, s in parse(html).sections} == {"spec", "data"}
    assert "no model: pass its model folder" in html
    with pytest.raises(ReportError, match="nothing to report yet"):
        phasm.surrogate(_wave, mode="capture").report(tmp_path / "x.html")


def test_the_stochastic_slot_draws_distribution_metrics(tmp_path: Path) -> None:
    from phasm.train import ModelArtefact

    fn = phasm.surrogate(_wave, store=tmp_path / "w.h5", backend="ridge", mode="capture")
    for a, b in np.random.default_rng(0).uniform(0, 3, (200, 2)):
        fn(float(a), float(b))
    fn.train(degree=2)
    edges = np.linspace(0, 10, 11)
    fn.model.sections["distribution"] = {
        "auc": 0.61, "auc_bound": 0.75, "n_simulated": 500, "n_generated": 500,
        "observables": {"layer 0 energy": {"edges": edges.tolist(), "simulated": np.arange(10.0).tolist(),
                                           "generated": (np.arange(10.0) + 0.5).tolist(), "unit": "GeV"},
                        "broken": {"edges": [0, 1], "simulated": [1, 2], "generated": [1]}},
        "metrics": {"layer_energy_max_rel_dev": 0.03}}
    fn.save(tmp_path / "model")
    assert "distribution" in ModelArtefact.load(tmp_path / "model").sections
    html = build_report([tmp_path / "model"], tmp_path / "r.html").read_text()
    page = parse(html)
    assert ("surrogate", "stochastic") in page.sections
    assert "within the bound" in html and "layer_energy_max_rel_dev" in html
    assert any(i["alt"] == "Distribution of layer 0 energy: generated against simulated" for i in page.images)
    assert "malformed histograms, not drawn: broken" in html
    assert "no capture store" in html  # the model alone: no accuracy plots, and the page says why


@given(st.lists(st.tuples(st.one_of(st.floats(0, 100), st.just(math.inf)), st.booleans()), min_size=1, max_size=200))
def test_threshold_curve_is_consistent(rows: list[tuple[float, bool]]) -> None:
    score = np.array([r[0] for r in rows])
    missed = np.array([r[1] for r in rows])
    c = threshold_curve(score, missed, 0.95, points=50)
    finite = np.isfinite(score)
    assert len(c.thresholds) <= min(50, int(finite.sum()))
    assert np.all(np.diff(c.thresholds) > 0) and np.all(np.diff(c.fallback_rate) <= 1e-12)
    for t, f, m, u, n in zip(c.thresholds, c.fallback_rate, c.miss_rate, c.miss_upper, c.accepted):
        acc = finite & (score <= t)
        assert n == acc.sum() and f == pytest.approx(1 - acc.mean())
        assert m == pytest.approx(missed[acc].mean()) and m <= u + 1e-12
    if finite.any():
        assert c.accepted[-1] == finite.sum()  # the last threshold accepts every row the domain lets through


@pytest.mark.parametrize("tolerance", [None, phasm.Tolerance(rel=0.05, max_miss_rate=0.1)])
def test_rows_with_nan_are_left_out_and_not_taken_for_later_captures(tmp_path: Path, tolerance) -> None:
    """Training drops non-finite rows (calibrated training before counting them): none of the store's rows
    came after training, and the errors are those of the finite rows."""
    def f(x: float) -> float:
        return math.nan if 0.40 < x < 0.45 else x * x

    fn = phasm.surrogate(f, store=tmp_path / "n.h5", backend="ridge", tolerance=tolerance, mode="capture")
    for x in np.random.default_rng(3).uniform(0, 1, 1000):
        fn(float(x))
    fn.train(degree=2)
    from phasm.report import collect

    fn.save(tmp_path / "m")
    fn.close()
    s, = collect([tmp_path / "m", tmp_path / "n.h5"]).surrogates
    assert s.accuracy is not None and not s.accuracy.after_training.any()
    assert s.data is not None and s.data.columns[-1].stats["nonfinite"] > 0
    n_nan = s.data.columns[-1].stats["nonfinite"]
    assert s.accuracy.n_rows == 1000 - n_nan and np.isfinite(s.accuracy.outputs[0].rel_error).all()
    assert np.median(s.accuracy.outputs[0].rel_error) < 1e-5  # x**2 by a quadratic: exact up to float32
    assert f"{n_nan} sampled rows with non-finite values left out" in s.accuracy.rows_label
    assert s.production is not None and s.production.replay is None


def test_a_model_whose_backend_is_missing_still_reports_its_record(tmp_path: Path, monkeypatch) -> None:
    """Reading a colleague's model without torch: spec, training record and certificate from phasm.json, and a note."""
    from phasm.errors import BackendUnavailable
    from phasm.train import ModelArtefact

    fn = phasm.surrogate(_wave, store=tmp_path / "w.h5", backend="ridge", mode="capture",
                         tolerance=phasm.Tolerance(rel=0.02, abs=1e-3, max_miss_rate=0.05))
    for a, b in np.random.default_rng(2).uniform(0, 3, (1200, 2)):
        fn(float(a), float(b))
    fn.train(degree=5)
    fn.save(tmp_path / "m")
    fn.close()

    def missing(cls, path, **kw):
        raise BackendUnavailable("backend 'ridge' needs a library that is not installed")

    monkeypatch.setattr(ModelArtefact, "load", classmethod(missing))
    html = build_report([tmp_path / "m", tmp_path / "w.h5"], tmp_path / "r.html").read_text()
    assert {s for _, s in parse(html).sections} == {"spec", "data", "training", "gate"}
    assert "could not be loaded here" in html and "certified: with 95% confidence" in html
