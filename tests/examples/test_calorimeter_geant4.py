"""The calorimeter example's optional Geant4 path (examples/calorimeter/geant4_shower.py).

geant4_pybind offers to download Geant4's data sets when imported without GEANT4_DATA_DIR, so every
test that could import it runs in a subprocess with that variable under control, and checks that
nothing imported it when the path refuses to run.  What runs without the data sets: the refusals,
the geometry built by Geant4 (thicknesses, materials, placements, Geant4's navigator against
shower.py's slab geometry) and the scoring of steps into voxels.  The simulation itself needs the
data sets: it runs only where GEANT4_DATA_DIR holds them.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

CALO_DIR = Path(__file__).resolve().parents[2] / "examples" / "calorimeter"
G4_VARIABLES = ("GEANT4_DATA_DIR", "G4LEDATA", "G4ENSDFSTATEDATA", "G4LEVELGAMMADATA")
HAS_GEANT4 = importlib.util.find_spec("geant4_pybind") is not None  # finds, never imports


def run_script(code: str, data_dir: str | None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``code`` in a fresh Python in examples/calorimeter, with GEANT4_DATA_DIR = ``data_dir`` (or unset)."""
    env = {k: v for k, v in os.environ.items() if k not in G4_VARIABLES}
    if data_dir is not None:
        env["GEANT4_DATA_DIR"] = data_dir
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=CALO_DIR, env=env, capture_output=True,
                          text=True, timeout=timeout)


REFUSAL = """
    import sys
    import numpy as np
    from geant4_shower import Geant4Unavailable, simulate_showers_geant4
    {before}
    try:
        simulate_showers_geant4(np.array([1000.0]), 0)
        print("RAN")
    except Geant4Unavailable as e:
        print("ERROR", e)
    print("IMPORTED", sys.modules.get("geant4_pybind") is not None)
"""


def refusal(data_dir: str | None, before: str = "") -> str:
    out = run_script(REFUSAL.format(before=before), data_dir)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "IMPORTED False", out.stdout
    assert len(lines) == 2 and lines[0].startswith("ERROR "), out.stdout  # one line
    return lines[0][len("ERROR "):]


def test_no_data_dir_is_refused_before_geant4_is_imported():
    message = refusal(None)
    assert "GEANT4_DATA_DIR is not set" in message and "G4EMLOW*" in message and "found no such variable" in message


def test_a_folder_without_the_data_sets_is_refused_before_geant4_is_imported(tmp_path):
    assert "not a folder" in refusal(str(tmp_path / "nowhere"))
    assert "missing G4EMLOW*, G4ENSDFSTATE*, PhotonEvaporation*; found: an empty folder" in refusal(str(tmp_path))
    (tmp_path / "G4NDL4.7.1").mkdir()
    (tmp_path / "G4EMLOW8.8").write_text("a file, not the data set's folder")
    (tmp_path / "G4ENSDFSTATE3.0").mkdir()
    (tmp_path / "PhotonEvaporation").mkdir()  # no version: not the data set's folder either
    message = refusal(str(tmp_path))
    assert f"GEANT4_DATA_DIR='{tmp_path}'" in message and "missing G4EMLOW*, PhotonEvaporation*;" in message
    assert "found: G4EMLOW8.8, G4ENSDFSTATE3.0, G4NDL4.7.1, PhotonEvaporation" in message


def test_missing_geant4_pybind_names_the_pip_command(tmp_path):
    for name in ("G4EMLOW8.8", "G4ENSDFSTATE3.0", "PhotonEvaporation6.1.2"):
        (tmp_path / name).mkdir()
    # None in sys.modules: Python's own way of saying a module cannot be imported, installed or not
    message = refusal(str(tmp_path), before='sys.modules["geant4_pybind"] = None')
    assert "geant4_pybind is not installed" in message and "pip install 'geant4-pybind" in message


def test_bad_arguments_are_refused_first():
    sys.path.insert(0, str(CALO_DIR))
    try:
        g4 = importlib.import_module("geant4_shower")
        with pytest.raises(ValueError, match="energies must be finite and > 0"):
            g4.simulate_showers_geant4(np.array([np.nan]))
        with pytest.raises(ValueError, match="particle must be"):
            g4.simulate_showers_geant4(np.array([1e3]), particle="mu-")
    finally:
        sys.path.remove(str(CALO_DIR))
    assert sys.modules.get("geant4_pybind") is None


def test_run_calorimeter_chooses_the_simulator_and_refuses_geant4_without_its_data(monkeypatch, capsys):
    for variable in G4_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    sys.path.insert(0, str(CALO_DIR))
    try:
        run = importlib.import_module("run_calorimeter")
        assert run.parse_args([]).simulator == "numpy"
        with pytest.raises(SystemExit):
            run.parse_args(["--simulator", "geant4"])
        assert "error: --simulator geant4: GEANT4_DATA_DIR is not set" in capsys.readouterr().err
        data = run.simulate_dataset(3, 2.0, 3.0, workers=1, chunk=2, seed=3, simulator="numpy")
        assert data["voxels"].shape == (3, 12, 6, 8) and data["cells"].shape == (3, 24) and (data["visible"] > 0).all()
    finally:
        sys.path.remove(str(CALO_DIR))
    assert sys.modules.get("geant4_pybind") is None


def test_docstring_examples_run(calo):
    # the Geant4 module's examples (data set search, refusal, scoring) and the shared readout's; none imports Geant4
    for module in (importlib.import_module("geant4_shower"), calo):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted >= 4, module
    assert sys.modules.get("geant4_pybind") is None


GEOMETRY = """
    import json
    import numpy as np
    import geant4_shower as gs
    from shower import Calorimeter

    cal = Calorimeter(pe_per_mev=1e9, threshold_mev=0.0)  # a near exact readout: the binning is what is checked
    geo = gs.build_geometry(cal, check_overlaps=True)
    g = gs.import_geant4(need_data=False)
    out = {"mm_per_cm": g.cm, "radius_mm": [], "half_z_mm": {}, "materials": {}, "placements": []}
    for role, lv in (("absorber", geo.absorber), ("active", geo.active)):
        solid, m = lv.GetSolid(), lv.GetMaterial()
        out["half_z_mm"][role] = solid.GetZHalfLength()
        out["radius_mm"].append(solid.GetOuterRadius())
        out["materials"][role] = [m.GetName(), m.GetRadlen() / g.cm, m.GetDensity() / (g.g / g.cm3)]
    for i in range(geo.escape.GetNoDaughters()):
        pv = geo.escape.GetDaughter(i)
        out["placements"].append([pv.GetName(), pv.GetCopyNo(), pv.GetTranslation().z / g.cm])

    # Geant4's navigator against shower.py's slab geometry, at random points
    nav = g.G4Navigator()
    nav.SetWorldVolume(geo.world)
    rng = np.random.default_rng(1)
    n = 3000
    # half over the whole face (and beyond it), half near the axis, where the readout's rings are
    r = np.where(rng.random(n) < 0.5, 1.1 * cal.radius_cm * np.sqrt(rng.random(n)), rng.exponential(3.0, n))
    phi = rng.uniform(-np.pi, np.pi, n)
    x, y, z = r * np.cos(phi), r * np.sin(phi), rng.uniform(-1.0, cal.depth_cm + 1.0, n)
    in_abs, cell, _, _ = cal.slab(z, np.ones(n))
    inside = (r < cal.radius_cm) & (z > 0) & (z < cal.depth_cm)
    expected = [(("Absorber" if a else "Scintillator"), int(c)) if i else ("World", 0)
                for a, c, i in zip(in_abs, cell, inside)]
    located, touchables = [], []
    for xi, yi, zi in zip(x, y, z):
        pv = nav.LocateGlobalPointAndSetup(g.G4ThreeVector(xi * g.cm, yi * g.cm, zi * g.cm))
        located.append((pv.GetName(), pv.GetCopyNo()))
        touchables.append(nav.CreateTouchableHistory())
    out["navigator_mismatches"] = sum(a != b for a, b in zip(located, expected))
    out["navigator_inside"] = int(inside.sum())

    # the sensitive detectors' scoring, fed steps whose points and touchables come from Geant4
    class Point:
        def __init__(self, position, touchable=None, status=g.G4StepStatus.fUndefined, kinetic=0.0):
            self.position, self.touchable, self.status, self.kinetic = position, touchable, status, kinetic
        def GetPosition(self): return self.position
        def GetTouchable(self): return self.touchable
        def GetStepStatus(self): return self.status
        def GetKineticEnergy(self): return self.kinetic

    class Particle:
        def __init__(self, name): self.name = name
        def GetParticleName(self): return self.name

    class Track:
        def __init__(self, name): self.particle, self.status = Particle(name), None
        def GetDefinition(self): return self.particle
        def SetTrackStatus(self, status): self.status = status

    class Step:
        def __init__(self, pre, post, edep, particle="e-"):
            self.pre, self.post, self.edep, self.track = pre, post, edep, Track(particle)
        def GetPreStepPoint(self): return self.pre
        def GetPostStepPoint(self): return self.post
        def GetTotalEnergyDeposit(self): return self.edep
        def GetTrack(self): return self.track

    deposits = gs.ShowerDeposits(cal, np.array([5000.0, 7000.0]), "e-")
    sds = gs.sensitive_detectors(g, lambda: deposits)
    steps = []  # (shower, in the scintillator, cell, midpoint x cm, midpoint y cm, MeV)
    for shower in range(2):
        deposits.start_shower()
        for k in np.flatnonzero(inside)[shower::2][:600]:
            # a step from the located point to 0.1 mm further along a random transverse direction
            a = g.G4ThreeVector(x[k] * g.cm, y[k] * g.cm, z[k] * g.cm)
            d = rng.uniform(-np.pi, np.pi)
            b = g.G4ThreeVector(a.x + 0.1 * np.cos(d), a.y + 0.1 * np.sin(d), a.z)
            edep = float(rng.uniform(0.05, 3.0))
            sd = sds["absorber" if in_abs[k] else "active"]
            assert sd.ProcessHits(Step(Point(a, touchables[k]), Point(b), edep), None)
            assert not sd.ProcessHits(Step(Point(a, touchables[k]), Point(b), 0.0), None)
            mid_x, mid_y = 0.5 * (a.x + b.x) / g.cm, 0.5 * (a.y + b.y) / g.cm
            steps.append((shower, not in_abs[k], int(cell[k]), mid_x, mid_y, edep))
        # leaving the calorimeter: counted once, on the step that starts at the boundary, and stopped
        for particle, kinetic in (("e+", 3.0), ("gamma", 40.0 * (shower + 1))):
            exit_point = Point(g.G4ThreeVector(), None, g.G4StepStatus.fGeomBoundary, kinetic)
            leaving = Step(exit_point, Point(None), 0.0, particle)
            assert sds["escape"].ProcessHits(leaving, None)
            assert leaving.track.status == g.G4TrackStatus.fStopAndKill
        assert not sds["escape"].ProcessHits(Step(Point(g.G4ThreeVector(), None, g.G4StepStatus.fUndefined, 9.0),
                                                  Point(None), 0.0), None)  # the primary's first step, at the gun
    result = deposits.result(np.random.default_rng(2), details=True)
    np.savez("scored.npz", steps=np.array(steps, dtype=float), voxels=result.voxels, visible=result.visible,
             cells=result.cell_deposit, leaked=result.leaked, rest_mass=result.rest_mass)
    print("RESULT", json.dumps(out))
"""


@pytest.mark.skipif(not HAS_GEANT4, reason="geant4_pybind is not installed (pip install -e '.[geant4]')")
def test_geant4_geometry_and_scoring_match_the_numpy_calorimeter(tmp_path, calo):
    shower = calo
    data_dir = tmp_path / "no-data-sets"  # set but empty: nothing to download, nothing to simulate with
    data_dir.mkdir()
    script = GEOMETRY.replace('np.savez("scored.npz"', f'np.savez({str(tmp_path / "scored.npz")!r}')
    out = run_script(script, str(data_dir))
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
    assert "Overlap" not in out.stdout.replace("Checking overlaps", "")  # check_overlaps found none
    found = json.loads(out.stdout.split("RESULT ", 1)[1])
    cal = shower.Calorimeter()

    assert found["mm_per_cm"] == 10.0
    assert found["half_z_mm"]["absorber"] == pytest.approx(5.0 * cal.absorber_cm)  # half of cm in mm
    assert found["half_z_mm"]["active"] == pytest.approx(5.0 * cal.active_cm)
    assert found["radius_mm"] == pytest.approx([10.0 * cal.radius_cm] * 2)
    for role, material in (("absorber", cal.absorber), ("active", cal.active)):
        name, x0_cm, density = found["materials"][role]
        assert name == {"lead": "G4_Pb", "polystyrene": "G4_POLYSTYRENE"}[material.name]
        assert x0_cm == pytest.approx(material.X0, rel=0.02) and density == pytest.approx(material.density, rel=0.01)
    placements = sorted(found["placements"], key=lambda p: p[2])
    assert len(placements) == 2 * cal.cells
    for i, (name, copy, z_cm) in enumerate(placements):
        cell, absorber = i // 2, i % 2 == 0
        assert (name, copy) == ("Absorber" if absorber else "Scintillator", cell)
        centre = cell * cal.cell_cm + (0.5 * cal.absorber_cm if absorber else cal.absorber_cm + 0.5 * cal.active_cm)
        assert z_cm == pytest.approx(centre)
    assert found["navigator_inside"] > 2000 and found["navigator_mismatches"] == 0

    # the scored steps' voxels, against a binning written out here from the readout's definition
    z = np.load(tmp_path / "scored.npz")
    steps = z["steps"]
    expected = np.zeros((2, *cal.voxel_shape))
    for shower_id, active, cell, x, y, e in steps:
        r = np.hypot(x, y)
        if not active or r >= cal.radial_edges_cm[-1]:
            continue
        ring = max(i for i, edge in enumerate(cal.radial_edges_cm[:-1]) if r >= edge)
        sector = int((np.arctan2(y, x) + np.pi) // (2 * np.pi / cal.angular)) % cal.angular
        expected[int(shower_id), int(cell) // cal.cells_per_layer, ring, sector] += e
    assert (expected > 0).sum() > 100
    np.testing.assert_allclose(z["voxels"], expected, rtol=1e-3, atol=1e-6)  # photo-statistics at 1e9 pe/MeV
    for s in range(2):
        mine = steps[steps[:, 0] == s]
        assert z["visible"][s] == pytest.approx(mine[mine[:, 1] == 1, 5].sum())
        np.testing.assert_allclose(z["cells"][s], np.bincount(mine[:, 2].astype(int), mine[:, 5], cal.cells))
    np.testing.assert_allclose(z["leaked"], [43.0, 83.0])
    np.testing.assert_allclose(z["rest_mass"], [2 * shower.ME] * 2)  # one positron left each shower


WIRING = """
    import json, os
    import numpy as np
    import geant4_shower as gs
    from shower import Calorimeter

    run = gs.geant4_run()  # a real run manager, initialised: geometry, sensitive detectors, physics list
    g = run.g
    out = {"generator": run.manager.GetUserPrimaryGeneratorAction() is run.gun,
           "detectors": {role: getattr(run.geometry, role).GetSensitiveDetector() is sd
                         for role, sd in run.detectors.items()},
           "same_run": gs.geant4_run(Calorimeter()) is run,
           "data": {v: os.path.basename(os.environ[v]) for v in gs.DATASETS.values()}, "primaries": []}
    for particle in ("e-", "e+", "gamma"):
        run.deposits = gs.ShowerDeposits(run.cal, np.array([1500.0, 2500.0]), particle)
        for _ in range(2):
            event = g.G4Event(0)
            run.gun.GeneratePrimaries(event)
            vertex = event.GetPrimaryVertex(0)
            p = vertex.GetPrimary(0)
            m, mass = p.GetMomentum(), p.GetMass()
            out["primaries"].append([p.GetG4code().GetParticleName(), event.GetNumberOfPrimaryVertex(),
                                     vertex.GetX0(), vertex.GetY0(), vertex.GetZ0(), m.x, m.y,
                                     float(np.sqrt(m.mag2() + mass**2) - mass)])
    try:
        gs.geant4_run(Calorimeter(cells=12))
    except ValueError as e:
        out["other_calorimeter"] = str(e)
    print("RESULT", json.dumps(out))
"""


@pytest.mark.skipif(not HAS_GEANT4, reason="geant4_pybind is not installed (pip install -e '.[geant4]')")
def test_geant4_run_manager_takes_the_detector_physics_and_gun(tmp_path):
    # Empty data set folders (and an empty nuclide list, which Geant4 reads when its run manager is
    # made): enough to initialise; a shower would need the real data sets.
    for name in ("G4EMLOW8.8", "G4ENSDFSTATE3.0", "PhotonEvaporation6.1.2"):
        (tmp_path / name).mkdir()
    (tmp_path / "G4ENSDFSTATE3.0" / "ENSDFSTATE.dat").write_text("")
    out = run_script(WIRING, str(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
    found = json.loads(out.stdout.split("RESULT ", 1)[1])
    assert found["generator"] and found["same_run"]
    assert found["detectors"] == {"active": True, "absorber": True, "escape": True}
    assert found["data"] == {"G4LEDATA": "G4EMLOW8.8", "G4ENSDFSTATEDATA": "G4ENSDFSTATE3.0",
                             "G4LEVELGAMMADATA": "PhotonEvaporation6.1.2"}
    expected = [(name, e) for name in ("e-", "e+", "gamma") for e in (1500.0, 2500.0)]
    for (name, energy), row in zip(expected, found["primaries"], strict=True):
        assert row[:2] == [name, 1] and row[2:7] == pytest.approx([0.0, 0.0, -1.0, 0.0, 0.0])  # on the axis, along z
        assert row[7] == pytest.approx(energy)  # kinetic energy, MeV
    assert found["other_calorimeter"].startswith("calorimeter must be the one this process's Geant4 geometry")
    assert found["other_calorimeter"].endswith("got one with cells=12 (built: 24)")


@pytest.fixture(scope="module")
def calo():
    sys.path.insert(0, str(CALO_DIR))
    try:
        yield importlib.import_module("shower")
    finally:
        sys.path.remove(str(CALO_DIR))


def _data_sets_here() -> str | None:
    """Why the real simulation cannot run here (None when it can), without importing Geant4."""
    if not os.environ.get("GEANT4_DATA_DIR"):
        return "GEANT4_DATA_DIR is not set (Geant4's data sets)"
    if not HAS_GEANT4:
        return "geant4_pybind is not installed"
    sys.path.insert(0, str(CALO_DIR))
    try:
        importlib.import_module("geant4_shower").geant4_datasets()
    except Exception as e:  # noqa: BLE001 - the reason to skip
        return str(e)
    finally:
        sys.path.remove(str(CALO_DIR))
    return None


SIMULATE = """
    import numpy as np
    from geant4_shower import simulate_showers_geant4
    from shower import simulate_showers

    E = np.repeat([2000.0, 8000.0], 12)
    g4 = simulate_showers_geant4(E, np.random.default_rng(5), details=True)
    again = simulate_showers_geant4(E[:2], np.random.default_rng(5), details=True)
    mc = simulate_showers(E, np.random.default_rng(5), details=True)
    gamma = simulate_showers_geant4(np.array([4000.0] * 4), 6, particle="gamma")
    np.savez(OUT, E=E, again=again.voxels, again_visible=again.visible, gamma=gamma, **{f"g4_{k}": v for k, v in g4._asdict().items()},
             **{f"mc_{k}": v for k, v in mc._asdict().items()})
"""


@pytest.mark.skipif(_data_sets_here() is not None, reason=str(_data_sets_here()))
def test_geant4_showers_agree_with_the_numpy_monte_carlo(tmp_path, calo):
    shower = calo
    out = run_script(SIMULATE.replace("OUT", repr(str(tmp_path / "showers.npz"))), os.environ["GEANT4_DATA_DIR"],
                     timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    z = np.load(tmp_path / "showers.npz")
    cal, E = shower.Calorimeter(), z["E"]
    voxels = z["g4_voxels"]
    assert voxels.shape == (len(E), *cal.voxel_shape) and voxels.dtype == np.float32
    assert z["gamma"].shape == (4, *cal.voxel_shape)
    pe = voxels.astype(np.float64) * cal.pe_per_mev  # the readout: whole photo-electrons, nothing under threshold
    assert (np.abs(pe - np.round(pe)) <= 1e-5 * np.maximum(pe, 1.0)).all()  # float32's precision
    assert voxels[voxels > 0].min() >= cal.threshold_mev - 1e-6
    # energy: conserved shower by shower, contained, and sampled like the numpy Monte Carlo's
    accounted = z["g4_cell_deposit"].sum(1) + z["g4_leaked"] + z["g4_rest_mass"]
    np.testing.assert_allclose(accounted, E, rtol=1e-3)
    assert (z["g4_leaked"] < 0.1 * E).all()
    g4_fraction, mc_fraction = (z["g4_visible"] / E).mean(), (z["mc_visible"] / E).mean()
    assert 0.5 * cal.mip_sampling_fraction < g4_fraction < cal.mip_sampling_fraction
    assert g4_fraction == pytest.approx(mc_fraction, rel=0.15)
    assert abs(voxels.sum() / z["g4_visible"].sum() - 1) < 0.05  # most of the light is in the voxels
    # the longitudinal profile: the same shower maximum within one radiation length
    physics = importlib.import_module("physics")
    fit_g4 = physics.longitudinal_fit(E / 1e3, z["g4_cell_deposit"], cal, bins=2)
    fit_mc = physics.longitudinal_fit(E / 1e3, z["mc_cell_deposit"], cal, bins=2)
    for a, b in zip(fit_g4["rows"], fit_mc["rows"]):
        assert a["t_max"] == pytest.approx(b["t_max"], abs=1.0)
    # a seed repeats the showers: Geant4's (events in order from the seeded engine), then the readout's
    np.testing.assert_array_equal(z["again_visible"], z["g4_visible"][:2])
    np.testing.assert_array_equal(z["again"], voxels[:2])
