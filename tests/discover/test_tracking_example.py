"""The proposal for examples/tracking/track_fit.py reproduces its hand-written spec (objects, ragged hits)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from phasm.discover import inspect_function, proposed_code, proposed_spec

TRACK_FIT = Path(__file__).resolve().parents[2] / "examples" / "tracking" / "track_fit.py"


def test_track_fit_proposal_matches_hand_written(tmp_path):
    if not TRACK_FIT.exists():  # pragma: no cover - the example ships with the repository
        pytest.skip("examples/tracking/track_fit.py not present")
    spec_ = importlib.util.spec_from_file_location("track_fit", TRACK_FIT)
    mod = importlib.util.module_from_spec(spec_)
    sys.modules["track_fit"] = mod
    spec_.loader.exec_module(mod)
    fit_track = mod.make_fit_track(tmp_path / "s.h5")  # a Surrogate with a hand-written spec
    events = mod.simulate(2, np.random.default_rng(0))
    ins = inspect_function(fit_track, [((events[0], mod.Track()), {}), ((events[1], mod.Track()), {})])
    assert ins.kinds() == {"event.hits[*].z": "in", "event.hits[*].x": "in", "event.hits[*].y": "in",
                           "track.x0": "out", "track.tx": "out", "track.y0": "out", "track.ty": "out"}
    assert ins.flags == [] and ins.disagreements == []
    proposal = proposed_spec(ins)
    assert proposal.hash == fit_track.spec.hash, proposal.diff(fit_track.spec)
    assert "\"hits\": phasm.each(\"event.hits\", fields=['x', 'y', 'z'])," in proposed_code(ins)
