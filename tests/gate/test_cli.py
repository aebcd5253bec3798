"""`phasm calibrate` and `phasm gate` as a user runs them."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

import phasm
from phasm.cli import app

runner = CliRunner(env={"COLUMNS": "200"})


def _store(path) -> None:
    @phasm.surrogate(store=path, mode="capture", name="demo.expcos", batched=True,
                     inputs={"a": phasm.Array((), np.float64), "b": phasm.Array((), np.float64)},
                     outputs={"y": phasm.Array((), np.float64)})
    def f(a, b):
        return np.exp(a) * np.cos(b) + 1.0

    rng = np.random.default_rng(0)
    f(rng.uniform(0, 1, 4000), rng.uniform(0, 1, 4000))
    f.close()


def test_calibrate_then_show(tmp_path) -> None:
    _store(tmp_path / "c.h5")
    res = runner.invoke(app, ["calibrate", str(tmp_path / "c.h5"), "-o", str(tmp_path / "m"), "--rel", "1e-3",
                              "--max-miss-rate", "0.05", "-p", 'member="ridge"', "-p", "k=3",
                              "-p", 'member_params={"degree": 3}'])
    assert res.exit_code == 0, res.output
    assert "certified" in res.output and "expected fallback rate" in res.output
    meta = json.loads((tmp_path / "m" / "phasm.json").read_text())
    assert meta["gate"]["kind"] == "conformal" and meta["gate"]["report"]["certified"]
    shown = runner.invoke(app, ["gate", str(tmp_path / "m")])
    assert shown.exit_code == 0, shown.output
    assert f"{meta['gate']['report']['expected_fallback_rate']:.2%}" in shown.output
    assert "per region" in shown.output and "edge, outermost 2.0%" in shown.output  # one row per region
    # The saved model and gate drive auto mode.
    g = phasm.surrogate(lambda a, b: np.exp(a) * np.cos(b) + 1.0, batched=True, name="demo.expcos",
                        inputs={"a": phasm.Array((), np.float64), "b": phasm.Array((), np.float64)},
                        outputs={"y": phasm.Array((), np.float64)}, model=tmp_path / "m", mode="auto")
    assert isinstance(g.gate, phasm.ConformalGate)
    assert g(np.array([3.0]), np.array([0.5]))[0] == np.exp(3.0) * np.cos(0.5) + 1.0  # out of domain: the original


def test_errors_are_clear(tmp_path) -> None:
    res = runner.invoke(app, ["calibrate", str(tmp_path / "missing.h5"), "-o", str(tmp_path / "m")])
    assert res.exit_code == 1 and "error" in res.output
    _store(tmp_path / "c.h5")
    res = runner.invoke(app, ["calibrate", str(tmp_path / "c.h5"), "-o", str(tmp_path / "m"), "--max-miss-rate", "1.5"])
    assert res.exit_code == 1 and "max_miss_rate must be in [0, 1)" in res.output
    runner.invoke(app, ["train", str(tmp_path / "c.h5"), "-o", str(tmp_path / "plain"), "--backend", "ridge", "-q"])
    res = runner.invoke(app, ["gate", str(tmp_path / "plain")])
    assert res.exit_code == 1 and "no calibrated gate" in res.output
