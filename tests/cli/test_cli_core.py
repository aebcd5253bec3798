"""`phasm info`, `phasm backends`, `phasm train` as a user runs them."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

import phasm
from phasm.cli import app

runner = CliRunner()


def make_store():
    @phasm.surrogate(store="cap/lin.h5", mode="capture", name="demo.lin")
    def lin(x: float, y: float) -> float:
        return 3.0 * x - y

    for x, y in np.random.default_rng(0).uniform(-1, 1, (200, 2)):
        lin(float(x), float(y))
    lin.close()


def test_backends_lists_ridge():
    res = runner.invoke(app, ["backends"])
    assert res.exit_code == 0, res.output
    assert "ridge" in res.output and "available" in res.output


def test_info_train_info_round_trip():
    make_store()
    res = runner.invoke(app, ["info", "cap/lin.h5"])
    assert res.exit_code == 0, res.output
    assert "rows: 200" in res.output and "demo.lin" in res.output and "in:x" in res.output
    res = runner.invoke(app, ["train", "cap/lin.h5", "--out", "models/lin", "--backend", "ridge", "-p", "degree=1", "-q"])
    assert res.exit_code == 0, res.output
    assert "model written to" in res.output
    res = runner.invoke(app, ["info", "models/lin"])
    assert res.exit_code == 0, res.output
    assert "backend ridge" in res.output and "validation error" in res.output
    assert "gate: captured input range, widened by" in res.output  # the default gate, in words (not JSON)
    f = phasm.surrogate(lambda x, y: 3.0 * x - y, name="demo.lin", model="models/lin", mode="model")
    assert abs(f(0.5, 0.25) - 1.25) < 1e-4


def test_errors_are_one_clear_line():
    res = runner.invoke(app, ["info", "nowhere.h5"])
    assert res.exit_code == 1 and "no capture store at nowhere.h5" in res.output
    make_store()
    res = runner.invoke(app, ["train", "cap/lin.h5", "--out", "m", "--backend", "nope"])
    assert res.exit_code == 1 and "unknown backend 'nope'" in res.output


def test_info_of_a_model_trained_elsewhere_prints_no_none(tmp_path):
    torch = __import__("pytest").importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 1)

        def forward(self, x):
            return self.lin(x)

    program = torch.export.export(Net(), (torch.zeros(4, 2),), dynamic_shapes=({0: torch.export.Dim("b")},))
    torch.export.save(program, str(tmp_path / "net.pt2"))

    @phasm.surrogate(inputs={"a": phasm.Scalar(), "b": phasm.Scalar()}, outputs={"y": phasm.Scalar()},
                     name="demo.add")
    def add(a, b):
        return a + b

    add.load_exported(tmp_path / "net.pt2")
    add.save(tmp_path / "model")
    res = runner.invoke(app, ["info", str(tmp_path / "model")])
    assert res.exit_code == 0, res.output
    assert "None" not in res.output
    assert "trained elsewhere (torch.export program)" in res.output and "net.pt2" in res.output
    assert "not recorded" in res.output and "backend torch" in res.output
    assert "gate: none stored (the finite gate" in res.output
