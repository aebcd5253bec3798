"""Track fitting over a variable number of hits, replaced by a set-model surrogate.

A straight track crosses up to 10 detector layers (z = 1..10); each layer
fires with probability 0.8, so events have 3-10 hits.  ``fit_track`` is the
least-squares fit x = x0 + tx*z, y = y0 + ty*z and writes its answer into a
caller-owned ``Track`` object.  phasm binds it with optics: the hits are
``phasm.each("event.hits", fields=["x", "y", "z"])`` (a ragged input) and the
outputs are attributes of the ``track`` argument, written back in model mode.

Run:  python examples/tracking/track_fit.py      (about 20 s on 2 CPU cores)
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np

import phasm


@dataclasses.dataclass
class Hit:
    x: float
    y: float
    z: float


@dataclasses.dataclass
class Event:
    hits: list[Hit]


class Track:
    """The reconstruction's track object: the fit fills it in place."""

    def __init__(self) -> None:
        self.x0 = self.tx = self.y0 = self.ty = 0.0


def make_fit_track(store: Path) -> phasm.Surrogate:
    @phasm.surrogate(
        inputs={"hits": phasm.each("event.hits", fields=["x", "y", "z"], max_len=10)},
        outputs={name: phasm.attr(f"track.{name}") for name in ("x0", "tx", "y0", "ty")},
        store=store,
        name="tracking.fit_track",
    )
    def fit_track(event: Event, track: Track) -> None:
        z = np.array([h.z for h in event.hits])
        A = np.stack([np.ones_like(z), z], 1)
        (track.x0, track.tx), *_ = np.linalg.lstsq(A, np.array([h.x for h in event.hits]), rcond=None)
        (track.y0, track.ty), *_ = np.linalg.lstsq(A, np.array([h.y for h in event.hits]), rcond=None)
        track.x0, track.tx, track.y0, track.ty = map(float, (track.x0, track.tx, track.y0, track.ty))

    return fit_track


def simulate(n: int, rng: np.random.Generator) -> list[Event]:
    events = []
    layers = np.arange(1.0, 11.0)
    for _ in range(n):
        x0, y0 = rng.normal(0, 1, 2)
        tx, ty = rng.normal(0, 0.3, 2)
        fired = layers[rng.random(10) < 0.8]
        while len(fired) < 3:
            fired = layers[rng.random(10) < 0.8]
        events.append(Event([Hit(float(x0 + tx * z + rng.normal(0, 0.01)), float(y0 + ty * z + rng.normal(0, 0.01)), float(z))
                             for z in fired]))
    return events


def main() -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        fit_track = make_fit_track(Path(tmp) / "tracks.h5")
        fit_track.mode = "capture"
        for event in simulate(4000, rng):
            fit_track(event, Track())
        result = fit_track.train(phi_hidden=(64, 64), rho_hidden=(128, 128), epochs=60, patience=15)
        print(result.summary())

        test = simulate(500, rng)
        fit_track.mode = "original"
        exact = [Track() for _ in test]
        t0 = time.perf_counter()
        for e, t in zip(test, exact):
            fit_track(e, t)
        t_orig = time.perf_counter() - t0
        fit_track.mode = "model"
        pred = [Track() for _ in test]
        t0 = time.perf_counter()
        for e, t in zip(test, pred):
            fit_track(e, t)  # the model's answer lands in t.x0, t.tx, ...
        t_model = time.perf_counter() - t0
        print(f"{'parameter':10} {'mean |error|':>13} {'spread of truth':>16}")
        for name in ("x0", "tx", "y0", "ty"):
            err = np.array([getattr(p, name) - getattr(e, name) for p, e in zip(pred, exact)])
            spread = np.std([getattr(e, name) for e in exact])
            print(f"{name:10} {np.abs(err).mean():13.4f} {spread:16.4f}")
        print(f"per call: original {t_orig / len(test) * 1e6:.0f} us, model {t_model / len(test) * 1e6:.0f} us "
              "(one event per call; the least-squares fit is cheap, so this shows the binding, not a speedup)")


if __name__ == "__main__":
    main()
