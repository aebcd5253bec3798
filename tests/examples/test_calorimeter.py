"""The calorimeter example: the numpy shower Monte Carlo conserves energy and agrees with shower theory,
and (slow) a reduced demo trains a generator through the stochastic gate and writes its summary."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

CALO_DIR = Path(__file__).resolve().parents[2] / "examples" / "calorimeter"


@pytest.fixture(scope="module")
def calo():
    sys.path.insert(0, str(CALO_DIR))
    try:
        yield importlib.import_module("shower"), importlib.import_module("physics")
    finally:
        sys.path.remove(str(CALO_DIR))


@pytest.fixture(scope="module")
def showers(calo):
    shower, _ = calo
    E = np.repeat([2_000.0, 8_000.0], 30)
    return E, shower.simulate_showers(E, np.random.default_rng(0), details=True)


def test_energy_is_conserved_shower_by_shower(showers):
    E, r = showers
    accounted = r.cell_deposit.sum(1) + r.leaked + r.rest_mass
    np.testing.assert_allclose(accounted, E, rtol=1e-6)
    assert (r.leaked < 0.1 * E).all()  # 21.7 X0 deep: little leaks out at these energies


def test_sampling_fraction_and_readout(calo, showers):
    shower, _ = calo
    E, r = showers
    cal = shower.Calorimeter()
    fraction = r.visible / E
    # showers sample less than a minimum-ionising particle (soft electrons range out in the lead)
    assert 0.6 * cal.mip_sampling_fraction < fraction.mean() < cal.mip_sampling_fraction
    assert fraction.std() / fraction.mean() < 0.1
    assert r.voxels.shape == (len(E), *cal.voxel_shape) and r.voxels.dtype == np.float32
    assert (r.voxels >= 0).all() and abs(r.voxels.sum() / r.visible.sum() - 1) < 0.05  # photo-statistics, threshold


def test_shower_maximum_follows_shower_theory(calo, showers):
    shower, physics = calo
    E, r = showers
    fit = physics.longitudinal_fit(E / 1e3, r.cell_deposit, shower.Calorimeter(), bins=2)
    t_max = [row["t_max"] for row in fit["rows"]]
    theory = [row["theory"] for row in fit["rows"]]
    assert np.allclose(t_max, theory, atol=0.5), (t_max, theory)
    assert t_max[1] - t_max[0] == pytest.approx(np.log(4.0), abs=0.4)  # t_max grows as ln E


def test_seeded_showers_repeat_and_bad_input_is_refused(calo):
    shower, _ = calo
    a = shower.simulate_showers(np.array([3_000.0]), np.random.default_rng(4))
    b = shower.simulate_showers(np.array([3_000.0]), np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="energies must be finite and > 0"):
        shower.simulate_showers(np.array([-1.0]))
    with pytest.raises(ValueError, match="particle must be"):
        shower.simulate_showers(np.array([1e3]), particle="muon")


@pytest.mark.slow
def test_reduced_demo_writes_summary_and_plots(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    sys.path.insert(0, str(CALO_DIR))
    try:
        run = importlib.import_module("run_calorimeter")
        summary = run.main(["--out", str(tmp_path), "--showers", "240", "--emin", "2", "--emax", "5",
                            "--epochs", "2", "--max-seconds", "20", "--workers", "1", "--threads", "1"])
    finally:
        sys.path.remove(str(CALO_DIR))
    written = json.loads((tmp_path / "summary.json").read_text())
    for key in ("auc", "speedup_batched", "layer_energy_max_rel_dev", "resolution_rel_dev", "seconds_per_shower_mc",
                "seconds_per_shower_model"):
        assert np.isfinite(written[key]), key
    assert 0.0 <= summary["auc"] <= 1.0 and summary["showers"] == 240
    assert all((tmp_path / p).stat().st_size > 1000 for p in written["plots"])
    assert (tmp_path / "model" / "phasm.json").exists()
