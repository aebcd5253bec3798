"""The forward tracker in the solenoid of ``examples/fieldmap``: planes, track states, the canned data set.

Tracks start on the target plane ``z = 0`` with the forward state
``(x, y, tx, ty, q/p)``: a vertex within 2 cm of the beam axis, slopes up to
0.3 (about 17 degrees), momenta 1-10 GeV of either charge (``q/p`` uniform in
``[0.1, 1]`` 1/GeV, sign random).  Ten detector planes at ``z = 0.25 ..
1.60 m`` each record a hit with probability 0.8 (an event keeps at least 4),
smeared by 150 um in x and y.  The last plane is the one the propagation
surrogate aims at.  The field comes from the map of ``examples/fieldmap``
(shared cache, so the two demos build it once).

Example
-------
>>> data = make_dataset(100, field=lambda p: np.tile([0.0, 0.0, 2.0], (len(p), 1)), seed=0)
>>> data["states"].shape, data["plane_states"].shape, int(data["offsets"][-1]) == len(data["hits"])
((100, 5), (100, 10, 4), True)
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fieldmap"))

import magnet  # noqa: E402  (examples/fieldmap)
from propagate import propagate  # noqa: E402

Z0 = 0.0
PLANES = tuple(round(0.25 + 0.15 * i, 2) for i in range(10))  # 0.25 .. 1.60 m
Z_DETECTOR = PLANES[-1]
HIT_SIGMA = 150e-6  # metres
FIRE_PROBABILITY = 0.8
MIN_HITS = 4
QOP_RANGE = (0.1, 1.0)  # 1/GeV: 1-10 GeV
SLOPE_MAX = 0.3
VERTEX_HALF_WIDTH = 0.02
TOLERANCE = 1e-4  # RKN local error per step (metres): about 1.5 um at the last plane


@dataclasses.dataclass
class Hit:
    x: float
    y: float
    z: float


@dataclasses.dataclass
class Event:
    hits: list[Hit]


class Track:
    """The reconstruction's track object: a fit fills its start state in place."""

    def __init__(self) -> None:
        self.x0 = self.y0 = self.tx = self.ty = self.qop = 0.0

    def state(self) -> np.ndarray:
        return np.array([self.x0, self.y0, self.tx, self.ty, self.qop])


def field_map(cache: str | Path, spacing: float = 0.02) -> magnet.FieldMap:
    """The solenoid's field map (built once, then loaded from ``cache``)."""
    return magnet.FieldMap.cached(spacing, cache)


def start_states(n: int, seed: int) -> np.ndarray:
    """``n`` start states ``(x, y, tx, ty, q/p)`` on the target plane, seeded."""
    rng = np.random.default_rng([seed, 7])
    qop = rng.choice([-1.0, 1.0], n) * rng.uniform(*QOP_RANGE, n)
    return np.column_stack([rng.uniform(-VERTEX_HALF_WIDTH, VERTEX_HALF_WIDTH, (n, 2)),
                            rng.uniform(-SLOPE_MAX, SLOPE_MAX, (n, 2)), qop])


def make_dataset(n: int, field: Callable[[np.ndarray], np.ndarray], seed: int) -> dict[str, Any]:
    """The canned track data set: start states, exact states on every plane, and smeared hits (flat + offsets)."""
    states = start_states(n, seed)
    on_planes = propagate(states, Z0, PLANES, field, tolerance=TOLERANCE)
    rng = np.random.default_rng([seed, 8])
    fired = rng.random((n, len(PLANES))) < FIRE_PROBABILITY
    short = fired.sum(1) < MIN_HITS
    while short.any():  # refire planes of events with too few hits
        fired[short] = rng.random((int(short.sum()), len(PLANES))) < FIRE_PROBABILITY
        short = fired.sum(1) < MIN_HITS
    z = np.broadcast_to(np.asarray(PLANES), (n, len(PLANES)))
    xy = on_planes[:, :, :2] + rng.normal(0.0, HIT_SIGMA, (n, len(PLANES), 2))
    hits = np.concatenate([xy, z[:, :, None]], 2)[fired]
    offsets = np.concatenate([[0], np.cumsum(fired.sum(1))])
    return {"states": states, "plane_states": on_planes, "hits": hits, "offsets": offsets,
            "planes": np.asarray(PLANES), "seed": seed}


def events_of(data: dict[str, Any]) -> list[Event]:
    """The data set's hits as the reconstruction's event objects."""
    hits, off = data["hits"], data["offsets"]
    return [Event([Hit(float(x), float(y), float(z)) for x, y, z in hits[a:b]]) for a, b in zip(off[:-1], off[1:])]


def save_dataset(data: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: np.asarray(v) for k, v in data.items()})
    return path


def load_dataset(path: Path) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
