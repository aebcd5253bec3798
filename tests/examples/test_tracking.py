"""The tracking example: the Runge-Kutta-Nystrom propagator and the track fit are right, the propagation
network and the LSTM go through torch.export and fn.load_exported, and the demo runs end to end (reduced)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2] / "examples"
TRACKING_DIR, FIELDMAP_DIR = ROOT / "tracking", ROOT / "fieldmap"
MODULES = ("detector", "propagate", "propagation", "fitting", "field_fit", "sequence", "magnet", "run_tracking")


@pytest.fixture()
def tracking(monkeypatch):
    monkeypatch.syspath_prepend(str(FIELDMAP_DIR))
    monkeypatch.syspath_prepend(str(TRACKING_DIR))
    for name in MODULES:
        sys.modules.pop(name, None)
    yield {name: importlib.import_module(name) for name in ("detector", "propagate", "field_fit")}
    for name in MODULES:
        sys.modules.pop(name, None)


def uniform(bz: float):
    return (lambda p: np.tile([0.0, 0.0, bz], (len(p), 1))), (lambda x, y, z: (0.0, 0.0, bz))


def test_docstring_examples_run(tracking) -> None:
    import doctest

    for name in ("propagate", "detector", "field_fit"):
        assert doctest.testmod(tracking[name]).failed == 0, name


def test_rkn_matches_the_exact_helix_and_both_implementations_agree(tracking) -> None:
    P, D = tracking["propagate"], tracking["detector"]
    field, field_one = uniform(1.9)
    states = D.start_states(300, seed=4)
    end = P.propagate(states, 0.0, [1.6], field, tolerance=1e-6)[:, 0]
    exact = P.helix_uniform(states, 0.0, 1.6, 1.9)
    assert np.abs(end[:, :2] - exact[:, :2]).max() < 1e-6 and np.abs(end[:, 2:] - exact[:, 2:]).max() < 1e-7
    assert np.abs(exact[:, :2] - (states[:, :2] + 1.6 * states[:, 2:4])).max() > 0.2  # 1 GeV tracks do bend
    through = P.propagate(states[:5], 0.0, D.PLANES, field, tolerance=1e-6)
    for k, s in enumerate(states[:5]):
        one = np.array(P.propagate_one(*s, 0.0, D.PLANES, field_one, tolerance=1e-6))
        np.testing.assert_allclose(one, through[k], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="planes must be increasing"):
        P.propagate(states, 0.0, [1.0, 0.5], field)
    with pytest.raises(ValueError, match=r"states must be \(n, 5\)"):
        P.propagate(states[:, :4], 0.0, [1.0], field)


def test_adaptive_steps_converge_in_the_field_map(tracking, tmp_path) -> None:
    P, D = tracking["propagate"], tracking["detector"]
    fm = D.field_map(tmp_path, spacing=0.1)  # a coarse map: its kinks between cells are what the steps must handle
    states = D.start_states(200, seed=5)
    fine = P.propagate(states, 0.0, [1.6], fm.lookup, tolerance=1e-8)[:, 0]
    tight = P.propagate(states, 0.0, [1.6], fm.lookup, tolerance=1e-6)[:, 0]
    used = P.propagate(states, 0.0, [1.6], fm.lookup, tolerance=D.TOLERANCE)[:, 0]
    assert np.abs(tight[:, :2] - fine[:, :2]).max() < 5e-6
    assert np.abs(used[:, :2] - fine[:, :2]).max() < 30e-6  # on the demo's 2 cm map: about 2 um
    assert np.abs(fine[:, :2] - P.helix_uniform(states, 0.0, 1.6, 1.85)[:, :2]).max() > 1e-3  # the map is not uniform


def test_track_fit_recovers_the_start_state(tracking, tmp_path) -> None:
    D, FF = tracking["detector"], tracking["field_fit"]
    fm = D.field_map(tmp_path, spacing=0.1)
    data = D.make_dataset(40, fm.lookup, seed=6)
    assert np.all(np.diff(data["offsets"]) >= D.MIN_HITS)
    # noise-free hits in the real map: the fit finds the truth
    for k in range(5):
        a, b = data["offsets"][k], data["offsets"][k + 1]
        exact = data["plane_states"][k][np.isin(D.PLANES, data["hits"][a:b, 2])][:, :2]
        hits = np.column_stack([exact, data["hits"][a:b, 2]])
        fit, iterations = FF.fit_hits(hits, fm.lookup_one)
        np.testing.assert_allclose(fit, data["states"][k], rtol=1e-4, atol=2e-6)
        assert iterations < FF.MAX_ITERATIONS
    # smeared hits: the fit is as good as 150 um hits allow, and the wrapper writes it into the track
    fit_track = FF.make_fit_track(fm.lookup_one)
    events = D.events_of(data)
    fitted = []
    for e in events:
        t = D.Track()
        fit_track(e, t)
        fitted.append(t.state())
    d = np.array(fitted) - data["states"]
    assert np.median(np.hypot(d[:, 0], d[:, 1])) < 1e-3 and np.median(np.abs(d[:, 4] / data["states"][:, 4])) < 0.05
    with pytest.raises(ValueError, match=r"hits must be \(m >= 3, 3\)"):
        FF.fit_hits(np.zeros((2, 3)), fm.lookup_one)


def test_exported_networks_round_trip_through_load_exported(tracking, tmp_path) -> None:
    torch = pytest.importorskip("torch")
    PR = importlib.import_module("propagation")
    seq = importlib.import_module("sequence")
    D = tracking["detector"]
    net = PR.HelixNet(np.zeros(5), np.ones(5), np.zeros(4), np.full(4, 1e-3), dz=1.6, hidden=(16,))
    fm = D.field_map(tmp_path, spacing=0.1)
    track, batch = PR.make_propagators(fm)
    batch.load_exported(PR.export(net, 5, tmp_path / "p.pt2"))
    batch.mode = "model"
    s = D.start_states(7, seed=1)
    pos, slope = batch(*s.T)
    with torch.no_grad():
        expect = net(torch.from_numpy(s.astype(np.float32))).numpy()
    np.testing.assert_allclose(np.column_stack([pos, slope]), expect, rtol=1e-6, atol=1e-7)
    # the LSTM reads phasm's encoded layout (40 columns for 10 hits of 3 features): padding never reaches it
    lstm = seq.HitLSTM(np.zeros(3), np.ones(3), np.zeros(5), np.ones(5), max_len=10, hidden=8, layers=1).eval()
    enc = np.zeros((3, 40), np.float32)
    enc[:, :12] = np.random.default_rng(0).normal(size=12)  # the same 4 hits in every row
    enc[:, 30:34] = 1.0
    enc[1, 12:30] = 9.0  # garbage in the padding of row 2
    enc[2, 12:15], enc[2, 34] = 0.5, 1.0  # row 3: a fifth hit
    with torch.no_grad():
        y = lstm(torch.from_numpy(enc)).numpy()
    np.testing.assert_allclose(y[0], y[1], rtol=1e-6)
    assert not np.allclose(y[0], y[2])


def test_demo_end_to_end_reduced(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    sys.path.insert(0, str(TRACKING_DIR))
    for name in MODULES:
        sys.modules.pop(name, None)
    try:
        run = importlib.import_module("run_tracking")
        summary = run.main(["--out", str(tmp_path), "--spacing", "0.1", "--prop-captures", "3000", "--prop-tests", "500",
                            "--prop-epochs", "15", "--batch", "500", "--events", "300", "--test-events", "40",
                            "--lstm-epochs", "3", "--lstm-hidden", "16", "--sets-epochs", "3", "--quiet"])
    finally:
        torch.set_num_threads(threads)
        sys.path.remove(str(TRACKING_DIR))
        for name in MODULES:
            sys.modules.pop(name, None)
    out = tmp_path / "tracking"
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert summary["propagation_pos_err_p95_um"] < 3000  # rough after 15 short epochs; the helix alone is ~1500 um
    assert summary["speedup_batched"] > 0
    assert set(summary["lstm_vs_sets"]) == {"lstm", "sets"}
    for model in ("lstm", "sets"):
        errs = summary["lstm_vs_sets"][model]
        assert errs["pos_um_p50"] > 0 and errs["qop_rel_p95"] >= errs["qop_rel_p50"]
    p = summary["propagation"]
    assert p["gate"]["n_calibration"] > 500 and p["tests"] == 500
    assert (out / "dataset" / "tracks.npz").is_file() and (out / "lstm-model" / "phasm.json").is_file()
    data = np.load(out / "dataset" / "tracks.npz")
    assert data["states"].shape == (340, 5) and int(data["offsets"][-1]) == len(data["hits"])
    assert "## LSTM vs DeepSets over hits" in (out / "summary.md").read_text()
