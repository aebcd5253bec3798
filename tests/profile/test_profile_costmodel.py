"""Cost model: measured on a real surrogate (ridge backend), JSON, plot, and the `phasm bench` / `phasm profile` CLI."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

import phasm
from phasm.cli import app
from phasm.gate.base import Gate
from phasm.profile.costmodel import CostModel, load_costs, measure_cost, plot_cost

runner = CliRunner()

SLOWMOD = '''
import math
import phasm

@phasm.surrogate(store="cap/slow.h5", backend="ridge")
def slow(x: float, y: float) -> float:
    acc = 0.0
    for k in range(1, 5000):
        acc += math.sin(x * k) / k + y / (k * k)
    return acc
'''


class LeftHalfGate(Gate):
    kind = "test-left-half"

    def accept(self, X, Y, model):
        return X[:, 0] < 0.5


@pytest.fixture()
def slowmod(tmp_path):
    (tmp_path / "slowmod.py").write_text(textwrap.dedent(SLOWMOD))
    sys.path.insert(0, str(tmp_path))
    sys.modules.pop("slowmod", None)
    import slowmod

    fn = slowmod.slow
    fn.mode = "capture"
    for x, y in np.random.default_rng(0).uniform(0, 1, (300, 2)):
        fn(float(x), float(y))
    fn.mode = None
    fn.train(backend="ridge", degree=3)
    yield fn
    fn.close()
    sys.path.remove(str(tmp_path))
    sys.modules.pop("slowmod", None)


def test_cost_model_arithmetic_and_json(tmp_path):
    cm = CostModel(function="m:f", t_orig_s=1e-3, t_model_s=4e-5, t_gate_s=1e-5, fallback_rate=0.05)
    assert cm.s_eff == pytest.approx(1e-3 / (5e-5 + 5e-5))
    assert cm.speedup(0.5) == pytest.approx(1 / (0.5 + 0.05))
    assert cm.scaled_speedup(0.5) == pytest.approx(0.5 + 5.0)
    back = CostModel.load(cm.save(tmp_path / "c.json"))
    assert back == cm
    assert load_costs([tmp_path / "c.json"]) == {"m:f": pytest.approx(10.0)}
    with pytest.raises(ValueError, match="fallback_rate must be within"):
        CostModel(function="m:f", t_orig_s=1.0, t_model_s=0.0, t_gate_s=0.0, fallback_rate=2.0)
    with pytest.raises(ValueError, match="not a phasm cost model"):
        CostModel.from_json({"format": "x"})


def test_measure_cost_on_a_real_surrogate(slowmod, tmp_path):
    cm = measure_cost(slowmod, widths=None, budget_s=0.3, batches=(1, 16, 256, 4096))
    assert cm.function == "slowmod:slow"
    assert cm.t_orig_s > 4 * cm.t_model_s > 0  # a 5000-term loop vs a degree-3 polynomial
    assert cm.fallback_rate == 0.0  # the default gate trusts every finite answer
    assert cm.s_eff == pytest.approx(cm.t_orig_s / (cm.t_model_s + cm.t_gate_s))
    curve = {int(k): v for k, v in cm.model_curve.items()}
    assert set(curve) <= {1, 16, 256, 4096} and 1 in curve and 256 in curve
    assert curve[256] < curve[1]  # batching amortises the per-call cost
    png = plot_cost(cm, tmp_path / "cost.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fallback_rate_is_measured(slowmod):
    slowmod.gate = LeftHalfGate()
    cm = measure_cost(slowmod, widths=None, budget_s=0.2, batches=(1,))
    assert cm.fallback_rate == pytest.approx(0.5, abs=0.08)  # x uniform on [0, 1]
    assert cm.s_eff < 2.0  # half the calls still pay for the original


class SlowFirstCallGate(Gate):
    """Like a gate loaded from a model folder: the first call builds something (0.5 s), later calls are cheap."""

    kind = "test-slow-first-call"

    def __init__(self) -> None:
        self.calls = 0

    def accept(self, X, Y, model):
        self.calls += 1
        if self.calls == 1:
            import time

            time.sleep(0.5)
        return np.ones(len(X), bool)


def test_a_gate_first_call_set_up_is_not_its_per_call_cost(slowmod):
    slowmod.gate = SlowFirstCallGate()
    cm = measure_cost(slowmod, widths=None, budget_s=0.2, batches=(1,))
    assert cm.t_gate_s < 0.05 and slowmod.gate.calls > 2


def test_measure_cost_errors(tmp_path):
    def plain(x):
        return x

    with pytest.raises(TypeError, match="needs a phasm.Surrogate"):
        measure_cost(plain)
    fn = phasm.surrogate(plain, store=tmp_path / "c.h5")
    with pytest.raises(ValueError, match="no model attached"):
        measure_cost(fn)


def test_cli_bench(slowmod, tmp_path):
    slowmod.save(tmp_path / "model")
    res = runner.invoke(app, ["bench", "slowmod:slow", "--model", str(tmp_path / "model"), "--out", "b",
                              "--p", "0.6", "--widths", "", "--budget", "0.2"])
    assert res.exit_code == 0, res.output
    assert "s_eff" in res.output and "predicted speedup" in res.output
    cost = json.loads((tmp_path / "b" / "cost.json").read_text())
    assert cost["function"] == "slowmod:slow" and cost["s_eff"] > 1
    assert (tmp_path / "b" / "cost.png").exists()
    bad = runner.invoke(app, ["bench", "slowmod:nope"])
    assert bad.exit_code == 1 and "has no attribute" in bad.output


def test_cli_profile_uses_cost_model(tmp_path):
    (tmp_path / "prog.py").write_text(textwrap.dedent('''
        import time
        def hot():
            end = time.thread_time() + 0.004
            while time.thread_time() < end:
                pass
        def rest():
            time.sleep(0.004)
        def loop():
            for _ in range(60):
                hot(); rest()
        if __name__ == "__main__":
            loop()
    '''))
    CostModel(function="prog:hot", t_orig_s=1e-3, t_model_s=1e-5, t_gate_s=0.0, fallback_rate=0.0).save("cost.json")
    res = runner.invoke(app, ["profile", "--sampler", "inprocess", "--rate", "400", "--out", "p", "--root", "prog:loop",
                              "--cost", "cost.json", "--", sys.executable, "prog.py"])
    assert res.exit_code == 0, res.output
    cands = json.loads((tmp_path / "p" / "candidates.json").read_text())
    hot = {c["name"]: c for c in cands}["prog:hot"]
    assert hot["s"] == pytest.approx(100.0) and hot["s_source"] == "cost model"
    assert 0.25 < hot["p"] < 0.75
    for f in ("oncpu.svg", "offcpu.svg", "oncpu.folded", "offcpu.speedscope.json"):
        assert (tmp_path / "p" / f).stat().st_size > 0
    assert "surrogate candidates within prog:loop" in res.output
    bad = runner.invoke(app, ["profile", "--sampler", "gdb", "--", sys.executable, "prog.py"])
    assert bad.exit_code == 1 and "--sampler must be one of" in bad.output
