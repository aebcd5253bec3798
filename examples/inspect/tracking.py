"""A toy track fit for ``phasm inspect``: objects, a list of hits, a global field, a helper that writes.

``fit_track(track, hits)`` moves ``track.state`` (x, y, slope) towards the
hits in place, writes ``track.chi2``, and reads the magnetic field from the
module-level ``DETECTOR`` configuration.  Run::

    phasm inspect examples/inspect/tracking.py:fit_track --example 'example()'

to see which of these the function reads and writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Magnet:
    bz: float = 1.5


@dataclass
class Detector:
    magnet: Magnet = field(default_factory=Magnet)
    name: str = "toy"


DETECTOR = Detector()


@dataclass
class Hit:
    x: float
    y: float
    sigma: float = 0.1
    time: float = 0.0


@dataclass
class Track:
    state: np.ndarray          # x0, y0, slope
    chi2: float = 0.0
    label: str = ""


def _update(track, residuals, weights):
    """The helper that writes: a weighted Gauss-Newton step on the slope and intercept."""
    step = np.sum(weights * residuals) / np.sum(weights)
    track.state[1] += step
    track.chi2 = float(np.sum(weights * residuals**2))


def fit_track(track, hits, iterations=3):
    """Fit ``track`` to ``hits`` (any number); curvature from the global field."""
    k = 0.01 * DETECTOR.magnet.bz
    for _ in range(iterations):
        xs = np.array([h.x for h in hits])
        ys = np.array([h.y for h in hits])
        w = np.array([1.0 / h.sigma**2 for h in hits])
        pred = track.state[1] + track.state[2] * xs + k * xs**2
        _update(track, ys - pred, w)
    return track.chi2 / max(len(hits) - 2, 1)


def example(n=6, seed=0):
    """Arguments for one call: a track and ``n`` hits."""
    rng = np.random.default_rng(seed)
    xs = np.linspace(0.0, 1.0, n)
    hits = [Hit(float(x), float(0.3 + 0.5 * x + rng.normal(0, 0.05))) for x in xs]
    return Track(np.array([0.0, 0.0, 0.5])), hits
