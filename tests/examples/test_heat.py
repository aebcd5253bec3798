"""The heat-equation example: the solver is right, and the demo runs capture -> train -> auto end to end."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

HEAT_DIR = Path(__file__).resolve().parents[2] / "examples" / "heat"


@pytest.fixture()
def heat_module(monkeypatch, tmp_path):
    """A fresh import of examples/heat/heat.py on a small grid, its store in tmp_path."""
    monkeypatch.setenv("HEAT_N", "12")
    monkeypatch.setenv("HEAT_STORE", str(tmp_path / "heat.h5"))
    monkeypatch.syspath_prepend(str(HEAT_DIR))
    sys.modules.pop("heat", None)
    mod = importlib.import_module("heat")
    yield mod
    sys.modules.pop("heat", None)


def laplacian_residual(f: np.ndarray, u: np.ndarray) -> float:
    n = f.shape[-1]
    h2 = (1.0 / (n - 1)) ** 2
    lap = (u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4 * u[1:-1, 1:-1]) / h2
    return float(np.abs(lap + f[1:-1, 1:-1]).max() / np.abs(f).max())


def test_solver_satisfies_the_discrete_poisson_equation(heat_module) -> None:
    heat = heat_module
    f = heat.random_sources(3, seed=4)
    u = np.zeros_like(f[0])
    iters = heat.solve(f[0], u)
    assert 10 <= iters < heat.MAX_ITER
    assert laplacian_residual(f[0], u) < 1e-3
    assert np.all(u[0] == 0) and np.all(u[-1] == 0) and np.all(u[:, 0] == 0) and np.all(u[:, -1] == 0)
    assert u.max() > 0  # positive sources heat the plate
    # The batched solver agrees with single solves (to the solver tolerance).
    U = np.zeros_like(f)
    heat.solve(f, U)
    for k in range(3):
        single = np.zeros_like(f[k])
        heat.solve(f[k], single)
        np.testing.assert_allclose(U[k], single, rtol=0, atol=1e-4 * np.abs(single).max())
    with pytest.raises(ValueError, match=r"got f \(12, 12\), u \(11, 11\)"):
        heat.solve(f[0], np.zeros((11, 11)))


def test_direct_solver_matches_sor_single_and_batched(heat_module) -> None:
    heat = heat_module
    f = heat.random_sources(4, seed=9)
    sor, lu = np.zeros_like(f), np.full_like(f, 7.0)   # the direct solver ignores (and resets) the guess
    heat.solve(f, sor)
    heat.solve_direct(f, lu)
    scale = np.abs(sor).max()
    np.testing.assert_allclose(lu, sor, rtol=0, atol=1e-4 * scale)
    assert laplacian_residual(f[1], lu[1]) < 1e-9 and np.all(lu[:, 0] == 0) and np.all(lu[:, :, -1] == 0)
    single = np.zeros_like(f[2])
    heat.solve_direct(f[2], single)
    np.testing.assert_allclose(single, lu[2], rtol=1e-12, atol=1e-12 * scale)
    with pytest.raises(ValueError, match=r"got f \(12, 12\), u \(11, 11\)"):
        heat.solve_direct(f[0], np.zeros((11, 11)))


def test_heat_spec_is_inout_and_batched_entry_point_shares_it(heat_module) -> None:
    heat = heat_module
    spec = heat.heat.spec
    assert [(v.name, v.direction, v.shape) for v in spec.variables] == [("f", "in", (12, 12)), ("u", "inout", (12, 12))]
    assert spec.hash == heat.heat_batch.spec.hash and heat.heat_batch.batched


def test_demo_end_to_end_small_grid(heat_module, tmp_path) -> None:
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    sys.modules.pop("heat", None)
    sys.path.insert(0, str(HEAT_DIR))
    try:
        run_heat = importlib.import_module("run_heat")
        out = tmp_path / "demo"
        summary = run_heat.main(["--out", str(out), "--grid", "12", "--captures", "400", "--tests", "30",
                                 "--epochs", "40", "--hidden", "64", "--batch", "30", "--batch-size", "16",
                                 "--lr", "3e-3", "--tolerance", "0", "--quiet"])
    finally:
        torch.set_num_threads(threads)
        sys.path.remove(str(HEAT_DIR))
        sys.modules.pop("run_heat", None)
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert "| relative error, 99th percentile |" in (out / "summary.md").read_text()
    unseen = summary["unseen"]
    assert unseen["count"] == 30 and unseen["model_calls"] + unseen["fallbacks"] == 30
    assert unseen["rel_p99"] < 0.15, unseen          # a rough model on a 12x12 grid after a few seconds
    assert unseen["batched_rel_p99"] < 0.15
    t = summary["time_per_call_s"]
    assert t["surrogate_batch1"] > 0 and t["original_batch1"] > 0
    assert t["direct_batch1"] > 0 and t["direct_batched_per_row"] > 0
    assert summary["direct_solver"]["rel_diff_vs_sor_max"] < 1e-3
    assert summary["speedup"]["vs_direct_batch1"] == pytest.approx(t["direct_batch1"] / t["surrogate_batch1"])
    assert "speedup vs sparse LU, batch 1" in (out / "summary.md").read_text()
    page = (out / "report.html").read_text()  # fn.report(): the demo's HTML report
    assert all(f'data-section="{s}"' in page for s in ("spec", "data", "training", "accuracy", "gate", "production"))
    assert "http://" not in page and "https://" not in page and "No certified gate" in page
    assert summary["training"]["epochs"] >= 1 and summary["training"]["validation"]["n"] > 0
    from phasm.train.artefact import ModelArtefact

    heat = sys.modules.get("heat")
    art = ModelArtefact.load(out / "model", expect_spec=heat.heat.spec if heat else None)
    assert art.backend.name == "torch" and art.spec.n_in_features == 2 * 144
