"""The physics-informed example: the finite-difference solver is right, the residual is zero on it,
and a reduced demo runs all three trainings and writes its summary."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")

PINN_DIR = Path(__file__).resolve().parents[2] / "examples" / "pinn"


@pytest.fixture()
def poisson(monkeypatch, tmp_path):
    monkeypatch.setenv("PINN_STORE", str(tmp_path / "t.h5"))
    monkeypatch.syspath_prepend(str(PINN_DIR))
    sys.modules.pop("poisson", None)
    yield importlib.import_module("poisson")
    sys.modules.pop("poisson", None)


def test_finite_differences_solve_the_plate_problem(poisson) -> None:
    n = poisson.GRID
    h = 1.0 / (n - 1)
    sx, sy, q, tl, tr = 0.4, 0.6, 30.0, 0.8, 0.2
    T = poisson.solve_field(sx, sy, q, tl, tr)
    assert np.all(T[0] == tl) and np.all(T[-1] == tr)
    g = np.linspace(0, 1, n)
    X, Y = np.meshgrid(g, g, indexing="ij")
    Tp = np.pad(T, ((0, 0), (1, 1)), mode="reflect")          # mirror nodes: dT/dy = 0 on y = 0, 1
    lap = (Tp[2:, 1:-1] + Tp[:-2, 1:-1] - 2 * Tp[1:-1, 1:-1]) / h**2 + (Tp[1:-1, 2:] + Tp[1:-1, :-2] - 2 * Tp[1:-1, 1:-1]) / h**2
    np.testing.assert_allclose(lap + poisson.source(X, Y, sx, sy, q)[1:-1], 0, atol=1e-8 * q)
    # Linear in (q, t_left, t_right); without a source the plate is the straight ramp.
    np.testing.assert_allclose(poisson.solve_field(sx, sy, 0.0, tl, tr), np.broadcast_to((tl + (tr - tl) * g)[:, None], (n, n)), atol=1e-12)
    np.testing.assert_allclose(poisson.solve_field(sx, sy, 2 * q, 0, 0), 2 * poisson.solve_field(sx, sy, q, 0, 0), rtol=1e-10)
    # The finite-difference answer is converged: a 4x finer mesh agrees to 0.1%.
    fine = poisson.solve_field(sx, sy, q, tl, tr, n=4 * (n - 1) + 1)[::4, ::4]
    assert np.linalg.norm(T - fine) / np.linalg.norm(fine) < 1e-3
    # The batched function: one solve per parameter set, interpolation exact at nodes.
    rows = np.array([[X[3, 5], Y[3, 5], sx, sy, q, tl, tr], [X[7, 1], Y[7, 1], 0.5, 0.5, 10.0, 0.0, 1.0]])
    got = poisson.temperature(*rows.T)
    np.testing.assert_allclose(got, [T[3, 5], poisson.solve_field(0.5, 0.5, 10.0, 0.0, 1.0)[7, 1]], rtol=1e-12)


def test_heat_residual_vanishes_on_the_exact_physics(poisson) -> None:
    """The residual, fed a model that is the true solution without source, is zero; with a wrong model it is not."""
    n = 400
    g = torch.Generator().manual_seed(0)
    inputs = {k: (lo + (hi - lo) * torch.rand(n, generator=g)).requires_grad_(True) for k, (lo, hi) in poisson.DOMAIN.items()}
    inputs["q"] = torch.zeros(n, requires_grad=True)              # no source: T = t_left + (t_right - t_left) x

    def ramp(v):
        return {"T": v["t_left"] + (v["t_right"] - v["t_left"]) * v["x"] + 0.0 * (v["x"] ** 2 + v["y"] ** 2)}  # keeps x, y in the graph

    terms = poisson.heat_residual(ramp, inputs)
    assert sorted(terms) == ["insulated", "left", "pde", "right"]
    for name, r in terms.items():
        assert float(r.detach().abs().max()) < 1e-6, name

    def bent(v):
        return {"T": ramp(v)["T"] + v["x"] * (1 - v["x"]) * v["y"] ** 2}

    terms = poisson.heat_residual(bent, inputs)
    assert float(terms["pde"].detach().abs().max()) > 1e-3 and float(terms["insulated"].detach().abs().max()) > 1e-3


def test_reduced_demo_runs_all_three_trainings(poisson, tmp_path) -> None:
    threads = torch.get_num_threads()
    sys.path.insert(0, str(PINN_DIR))
    try:
        run_pinn = importlib.import_module("run_pinn")
        out = tmp_path / "demo"
        summary = run_pinn.main(["--out", str(out), "--solves", "8", "--few", "2", "--points", "11", "--seconds", "3",
                                 "--tests", "6", "--hidden", "32,32", "--collocation", "256", "--quiet"])
    finally:
        torch.set_num_threads(threads)
        sys.path.remove(str(PINN_DIR))
        sys.modules.pop("run_pinn", None)
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summary))
    md = (out / "summary.md").read_text()
    assert "| (c) few captures + physics | 2 |" in md and "no GPU was measured" in md
    assert summary["captures_used"] == {"captures_only": 8, "physics_only": 0, "few_plus_physics": 2}
    runs = summary["runs"]
    for name, run in runs.items():
        assert 2.9 < run["train_seconds"] < 6, (name, run["train_seconds"])   # equal training time
        assert np.isfinite(run["rel_l2"]) and run["steps"] >= run["epochs"] >= 1
    assert runs["physics_only"]["captured_rows"] == 0 and runs["physics_only"]["final_physics_loss"] > 0
    assert set(runs["few_plus_physics"]["final_physics_terms"]) == {"pde", "left", "right", "insulated"}
    # A zero model scores 1.0; after 3 s, physics alone already knows the edges and the source.
    assert summary["rel_l2_physics_only"] < 0.6, summary["rel_l2_physics_only"]
    assert summary["rel_l2_captures_only"] < 0.8
    # Physics helps most where captures are scarce: 2 solves + physics beat the same 2 solves alone.
    assert summary["rel_l2_few_plus_physics"] < summary["rel_l2_few_captures_only"], summary
