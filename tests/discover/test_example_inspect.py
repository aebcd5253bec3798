"""The proposal for examples/inspect/tracking.py is usable as it stands: pasted into a surrogate, it captures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import phasm
from phasm.discover import inspect_function, proposed_declarations
from phasm.discover.examples import load_target
from phasm.store import CaptureStore

TRACKING = Path(__file__).resolve().parents[2] / "examples" / "inspect" / "tracking.py"


def test_tracking_interface_and_proposal_capture(tmp_path):
    fit_track = load_target(f"{TRACKING}:fit_track")
    mod = __import__(fit_track.__module__)
    ins = inspect_function(fit_track, [(mod.example(), {}), (mod.example(9, seed=1), {})])
    assert ins.kinds() == {
        "track.state": "inout", "track.chi2": "out", "hits[*].x": "in", "hits[*].y": "in", "hits[*].sigma": "in",
        "hits[*].time": "unused", "iterations": "in", "global:tracking.DETECTOR.magnet.bz": "in", "return": "out"}
    assert "tracking._update" in ins.calls
    inputs, outputs = proposed_declarations(ins)
    assert sorted(inputs) == ["hits"] and sorted(outputs) == ["chi2", "result", "state"]

    wrapped = phasm.surrogate(inputs=inputs, outputs=outputs, store=tmp_path / "fit.h5", mode="capture")(fit_track)
    calls = [mod.example(n, seed=s) for n, s in ((5, 0), (8, 1), (6, 2))]
    expected = []
    for track, hits in calls:
        state0 = track.state.copy()
        ret = wrapped(track, hits)
        expected.append((state0, hits, track.state.copy(), track.chi2, ret))
    wrapped.close()
    store = CaptureStore(tmp_path / "fit.h5")
    assert len(store) == 3
    captured_in, captured_out = store.read()
    for i, (state0, hits, state1, chi2, ret) in enumerate(expected):
        assert np.array_equal(captured_in["state"][i], state0)  # inout: the value passed in
        assert np.array_equal(captured_out["state"][i], state1)
        assert captured_out["chi2"][i] == chi2 and captured_out["result"][i] == ret
        rows = np.asarray(captured_in["hits"][i])
        assert np.array_equal(rows, [[h.x, h.y, h.sigma] for h in hits])
