"""`phasm inspect` as a user runs it: --example, --json, --from-store, errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from phasm.cli import app

HERE = Path(__file__).parent
TARGETS = str(HERE / "discover_targets.py")
runner = CliRunner()


def test_example_and_json():
    res = runner.invoke(app, ["inspect", f"{TARGETS}:kick", "--example", "Particle(1.0, 2.0), 0.1", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert {v["path"]: v["kind"] for v in out["variables"]} == {
        "p.ax": "in", "p.e": "out", "p.tag": "unused", "p.vx": "inout", "dt": "in"}
    assert out["flags"] == []
    vx = next(v for v in out["variables"] if v["path"] == "p.vx")
    assert vx["shape"] == [] and vx["dtype"] == "float64"
    assert '"vx": phasm.attr("p.vx", direction=\'inout\')' in out["proposed_spec"]


def test_text_report_and_dict_example_and_flags():
    res = runner.invoke(app, ["inspect", f"{TARGETS}:prints", "-e", "dict(args=(2.0,))"])
    assert res.exit_code == 0, res.output
    assert "flags: io" in res.output and "builtins.print" in res.output
    assert "@phasm.surrogate(" in res.output and '"x": phasm.Scalar(),' in res.output


def test_from_store_replays_captured_calls(tmp_path):
    sys.path.insert(0, str(HERE))
    import discover_targets as T

    import phasm

    wrapped = phasm.surrogate(store=tmp_path / "c.h5", mode="capture",
                              inputs={"k": phasm.Scalar()},
                              outputs={"u": phasm.Array((4,), direction="inout")})(T.mutates_inplace)
    for k in (1.0, 2.0, 3.0):
        wrapped(np.ones(4), k)
    wrapped.close()
    res = runner.invoke(app, ["inspect", f"{TARGETS}:mutates_inplace", "--from-store", str(tmp_path / "c.h5"),
                              "--json", "--rows", "2"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["examples"] == 2
    assert {v["path"]: v["kind"] for v in out["variables"]} == {"u": "inout", "k": "in"}


def test_clear_errors():
    res = runner.invoke(app, ["inspect", "no_such_module_xyz:f", "-e", "1"])
    assert res.exit_code == 1 and "cannot import module 'no_such_module_xyz'" in res.output
    res = runner.invoke(app, ["inspect", f"{TARGETS}:pure_scalars"])
    assert res.exit_code == 1 and "give at least one --example" in res.output
    res = runner.invoke(app, ["inspect", f"{TARGETS}:pure_scalars", "-e", "(1.0, undefined_name)"])
    assert res.exit_code == 1 and "NameError" in res.output
    res = runner.invoke(app, ["inspect", f"{TARGETS}:pure_scalars", "-e", "1.0"])
    assert res.exit_code == 1 and "do not fit pure_scalars(x, y)" in res.output
    res = runner.invoke(app, ["inspect", f"{TARGETS}:GAIN", "-e", "1.0"])
    assert res.exit_code == 1 and "not a function" in res.output


def test_example_that_raises_exits_2():
    res = runner.invoke(app, ["inspect", f"{TARGETS}:fit_line", "-e", "[Hit(1.0, 1.0)]"])
    assert res.exit_code == 2
    assert "raises: ZeroDivisionError" in res.output


def test_from_store_with_object_optics_says_why_it_cannot_replay(tmp_path):
    sys.path.insert(0, str(HERE))
    import discover_targets as T

    import phasm

    wrapped = phasm.surrogate(store=tmp_path / "k.h5", mode="capture",
                              inputs={"p_ax": phasm.attr("p.ax"), "dt": phasm.Scalar()},
                              outputs={"p_e": phasm.attr("p.e")})(T.kick)
    wrapped(T.Particle(1.0, 2.0), 0.1)
    wrapped.close()
    res = runner.invoke(app, ["inspect", f"{TARGETS}:kick", "--from-store", str(tmp_path / "k.h5")])
    assert res.exit_code == 1
    assert "variable 'p_ax'" in res.output and "cannot be replayed as a call; use --example" in res.output
