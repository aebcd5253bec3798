"""Acceptance: the profiler + cost model predict the end-to-end speedup a surrogate delivers.

Runs benchmarks/prediction.py on the example driver (profile, capture, train ridge, cost model,
then original vs auto). The benchmark holds the issue's +-15 %; this test, on a shared 2-core
machine with a shorter run, allows +-25 %.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "prediction.py"


@pytest.mark.slow  # timing-based: on a loaded 2-core machine the +-25 % band flakes; the benchmark holds the goal
def test_predicted_speedup_matches_measured(tmp_path):
    spec = importlib.util.spec_from_file_location("phasm_prediction_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    r = bench.run(tmp_path / "work", steps=300, repeats=3, rate_hz=500, sampler="inprocess")
    assert 0.2 < r["p"] < 0.8  # heat_midpoint is a real share of driver:run, not all of it
    assert r["s_eff"] > 3
    assert r["measured"] > 1.2  # replacing it helps, measurably
    assert r["predicted"] == pytest.approx(r["measured"], rel=0.25), r
