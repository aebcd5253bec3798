"""`phasm sample` as a user runs it: a file target on local workers, adaptive rounds, errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from phasm.cli import app
from phasm.sampling import SampleRun
from phasm.store import CaptureStore

runner = CliRunner()

SIM = textwrap.dedent('''
    import math
    import time

    def rate(T, P, phi=1.0):
        time.sleep(0.01)
        return phi * math.exp(-1000.0 / T) * P ** 0.5
''')


@pytest.mark.slow  # a subprocess starting its own cluster: ~20 s on 2 busy cores (the fixture's cluster covers the default run)
def test_cli_on_two_local_workers_with_a_file_target():
    Path("sim.py").write_text(SIM)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "phasm"), "sample", "sim.py:rate", "--space", "T=1000:1500", "--space", "P=1:40:log",
         "--space", "phi=0.5", "--n", "32", "--workers", "2", "--store", "captures/rate.h5"],
        capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "32 of 32 design rows stored" in proc.stdout and "on 2 worker(s)" in proc.stdout
    assert "rows/s" in proc.stdout + proc.stderr  # the progress bar's rate (and the summary's)
    ins, outs = CaptureStore("captures/rate.h5").read()
    np.testing.assert_allclose(outs["result"], 0.5 * np.exp(-1000.0 / ins["T"]) * ins["P"] ** 0.5)
    assert ins["P"].min() >= 1 and ins["P"].max() <= 40 and (ins["phi"] == 0.5).all()


def test_cli_adaptive_rounds_in_process_save_the_last_model():
    Path("sim2.py").write_text(SIM.replace("time.sleep(0.01)", "pass"))
    res = runner.invoke(app, ["sample", "sim2.py:rate", "-s", "T=1000:1500", "-s", "P=1:40:log", "--n", "300",
                              "--workers", "0", "--adaptive", "2", "--adaptive-batch", "50", "--rel", "0.05",
                              "--max-miss-rate", "0.1", "--backend", "ensemble", "-p", "member=ridge", "-p", "k=3",
                              "-p", 'member_params={"degree": 3}', "--out", "models/rate", "-q"])
    assert res.exit_code == 0, res.output
    assert "400 of 400 design rows stored" in res.output and "adaptive rounds" in res.output
    run = SampleRun.load("captures/rate.h5")
    assert [b["kind"] for b in run.batches] == ["design", "adaptive", "adaptive"]
    assert Path("models/rate/phasm.json").is_file()
    res = runner.invoke(app, ["info", "models/rate"])
    assert res.exit_code == 0 and "backend ensemble" in res.output


def test_cli_errors_are_one_line():
    Path("sim3.py").write_text(SIM)
    res = runner.invoke(app, ["sample", "sim3.py:rate", "-s", "T=1500:1000", "--n", "8", "--workers", "0"])
    assert res.exit_code == 1
    assert "error: space: 'T': expected low < high, got 1500.0:1000.0" in res.output
    res = runner.invoke(app, ["sample", "sim3.py:rate", "-s", "T=1000:1500", "--n", "8", "--workers", "0"])
    assert res.exit_code == 1 and "argument 'P' has no default" in res.output
    res = runner.invoke(app, ["sample", "sim3.py:nope", "-s", "T=1000:1500", "--n", "8"])
    assert res.exit_code == 1 and "has no attribute 'nope'" in res.output


def test_cli_adaptive_rounds_with_a_single_model_backend():
    """A backend with neither members nor a native std (ridge) explores by the gate and held-out errors only."""
    Path("sim4.py").write_text(SIM.replace("time.sleep(0.01)", "pass"))
    res = runner.invoke(app, ["sample", "sim4.py:rate", "-s", "T=1000:1500", "-s", "P=1:40:log", "--n", "200",
                              "--workers", "0", "--adaptive", "1", "--adaptive-batch", "40", "--rel", "0.05",
                              "--max-miss-rate", "0.1", "--backend", "ridge", "-p", "degree=3", "-q"])
    assert res.exit_code == 0, res.output
    assert "240 of 240 design rows stored" in res.output and "adaptive rounds" in res.output


def test_cli_debug_shows_the_traceback():
    Path("sim5.py").write_text(SIM)
    res = runner.invoke(app, ["--debug", "sample", "sim5.py:rate", "-s", "T=1500:1000", "--n", "8", "--workers", "0"])
    assert res.exit_code != 0 and res.exception is not None and "expected low < high" in str(res.exception)
