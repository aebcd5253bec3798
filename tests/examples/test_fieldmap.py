"""The field-map example: the Biot-Savart field is right, the map interpolates it as it should, and the demo
runs capture -> train -> certify -> cost model end to end (reduced)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

FIELDMAP_DIR = Path(__file__).resolve().parents[2] / "examples" / "fieldmap"


@pytest.fixture()
def magnet(monkeypatch):
    monkeypatch.syspath_prepend(str(FIELDMAP_DIR))
    sys.modules.pop("magnet", None)
    return importlib.import_module("magnet")


def test_docstring_examples_run(magnet) -> None:
    import doctest

    assert doctest.testmod(magnet).failed == 0


def test_loop_and_thick_solenoid_match_closed_forms(magnet) -> None:
    a, current = 0.7, 1000.0
    z = np.array([-0.5, 0.0, 0.3, 2.0])
    _, bz = magnet.loop_field(np.zeros_like(z), z, np.array(a), np.array(current))
    np.testing.assert_allclose(bz, magnet.MU0 * current * a**2 / (2 * (a**2 + z**2) ** 1.5), rtol=1e-12)
    coil = magnet.Coil(0.95, 1.05, -1.0, 1.0, 1e7)
    pts = np.array([[0.0, 0.0, zz] for zz in (0.0, 0.5, 1.0, 1.5)])

    def on_axis(zz: float) -> float:  # thick finite solenoid on its axis
        f = lambda r, u: u * np.log(r + np.sqrt(r * r + u * u))  # noqa: E731
        return magnet.MU0 * 1e7 / 2 * sum(s * (f(1.05, u) - f(0.95, u)) for u, s in ((zz + 1, 1), (zz - 1, -1)))

    np.testing.assert_allclose(magnet.coil_field(coil, pts, n_r=6, n_z=40)[:, 2], [on_axis(p[2]) for p in pts], rtol=1e-9)


def test_field_is_divergence_and_curl_free_in_the_bore(magnet) -> None:
    """Maxwell in a current-free region, by central differences on the exact Biot-Savart field."""
    rng = np.random.default_rng(3)
    p = np.column_stack([rng.uniform(-0.6, 0.6, (20, 2)), rng.uniform(-0.2, 1.9, 20)])
    h = 1e-4
    J = np.stack([(magnet.field_at(p + h * e) - magnet.field_at(p - h * e)) / (2 * h) for e in np.eye(3)], 2)  # dB_i/dx_j
    scale = np.abs(J).max()
    div = J[:, 0, 0] + J[:, 1, 1] + J[:, 2, 2]
    curl = np.stack([J[:, 2, 1] - J[:, 1, 2], J[:, 0, 2] - J[:, 2, 0], J[:, 1, 0] - J[:, 0, 1]], 1)
    assert np.abs(div).max() < 1e-6 * scale and np.abs(curl).max() < 1e-6 * scale
    assert scale > 0.05  # the field does vary (end coils, misaligned coil): the check has teeth
    b = magnet.field_at(np.array([[0.0, 0.0, 0.25], [0.0, 0.0, 5.0]]))
    assert 1.8 < b[0, 2] < 2.0 and np.linalg.norm(b[1]) < 0.05  # ~1.9 T in the bore, little outside


def test_the_misaligned_coil_breaks_the_symmetry(magnet) -> None:
    p = np.array([[0.3, 0.0, 1.0], [0.0, 0.3, 1.0], [-0.3, 0.0, 1.0], [0.0, -0.3, 1.0]])
    bz = magnet.field_at(p)[:, 2]
    assert np.ptp(bz) > 1e-4  # a perfectly coaxial set would give four equal values
    aligned = [magnet.Coil(c.r1, c.r2, c.z1, c.z2, c.j) for c in magnet.COILS]
    assert np.ptp(magnet.field_at(p, aligned)[:, 2]) < 1e-12


def test_map_interpolates_as_trilinear_and_caches(magnet, tmp_path) -> None:
    fm = magnet.FieldMap.cached(0.1, tmp_path)
    assert fm.shape == magnet.FieldMap.mesh_shape(0.1) and fm.nbytes == np.prod(fm.shape) * 12
    nodes = fm.origin + 0.1 * np.array([[3, 4, 5], [0, 0, 0], [18, 18, 23]])
    np.testing.assert_allclose(fm.lookup(nodes), magnet.field_at(nodes), rtol=1e-6, atol=1e-6)  # exact at nodes
    pts = magnet.tracking_volume_points(300, seed=2)
    one = np.array([fm.lookup_one(*map(float, q)) for q in pts])
    np.testing.assert_allclose(one, fm.lookup(pts), rtol=1e-12, atol=1e-12)
    # a map of a linear field is exact everywhere: trilinear interpolation reproduces linear functions
    lin = magnet.FieldMap(np.stack(np.meshgrid(*[np.arange(n) * 0.1 for n in fm.shape], indexing="ij"), -1) @ np.diag([1, 2, 3]),
                          fm.origin, 0.1)
    np.testing.assert_allclose(lin.lookup(pts), (pts - fm.origin) @ np.diag([1, 2, 3]), rtol=1e-5, atol=1e-6)
    again = magnet.FieldMap.cached(0.1, tmp_path)  # loaded, not rebuilt
    np.testing.assert_array_equal(again.values, fm.values)
    (cached,) = tmp_path.glob("fieldmap-*.npy")
    cached.write_bytes(cached.read_bytes()[:1000])  # a truncated cache is built again
    np.testing.assert_array_equal(magnet.FieldMap.cached(0.1, tmp_path).values, fm.values)
    # the interpolation error falls like h**2
    e4, e2 = (np.quantile(magnet.interpolation_error(h, pts), 0.5) for h in (0.08, 0.04))
    assert 2.5 < e4 / e2 < 6.0
    with pytest.raises(ValueError, match=r"values must be \(nx, ny, nz, 3\)"):
        magnet.FieldMap(np.zeros((4, 4, 3)), (0, 0, 0), 0.1)


def test_demo_end_to_end_reduced(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    sys.path.insert(0, str(FIELDMAP_DIR))
    sys.modules.pop("run_fieldmap", None)
    try:
        run = importlib.import_module("run_fieldmap")
        summary = run.main(["--out", str(tmp_path), "--spacing", "0.1", "--captures", "6000", "--tests", "2000",
                            "--epochs", "20", "--batch-size", "128", "--lr", "5e-3", "--resolution-points", "100", "--budget", "0.1", "--tolerance", "0.05",
                            "--quiet"])
    finally:
        torch.set_num_threads(threads)
        sys.path.remove(str(FIELDMAP_DIR))
        for name in ("run_fieldmap", "field"):
            sys.modules.pop(name, None)
    out = tmp_path / "fieldmap"
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summary))
    for key in ("field_rel_err_p99", "map_bytes", "model_bytes", "speedup_batch1", "speedup_batched"):
        assert summary[key] > 0, key
    assert summary["field_rel_err_p99"] < 0.15  # a rough model after 20 short epochs; a constant field would be ~40% off
    assert summary["map_bytes"] == 19 * 19 * 24 * 12 and summary["model_bytes"] < 50_000
    assert summary["surrogate"]["auto_mode"]["outside_points_sent_to_the_map"] == "5 of 5"
    res = summary["map"]["resolution"]
    assert [r["spacing_m"] for r in res] == [0.08, 0.04, 0.02, 0.01, 0.005]
    assert all(a["rel_err_p99"] > b["rel_err_p99"] for a, b in zip(res, res[1:]))  # finer meshes are more accurate
    assert [r["batch"] for r in summary["time_per_row_vs_batch"]] == [1, 16, 256, 4096, 65536]
    assert summary["cost_model"]["batch1"]["format"] == "phasm-cost/1"
    md = (out / "summary.md").read_text()
    assert "| memory: map (this mesh) / model weights |" in md and "Machine:" in md
