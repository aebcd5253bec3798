"""A ladder of functions with known interfaces, for the interface-discovery tests.

Each function's docstring states the classification ``phasm inspect`` must find.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

GAIN = 2.5
LAST = 0.0
HISTORY: list = []
WORK = np.zeros(4)


class Grid:
    def __init__(self, dx: float, n: int) -> None:
        self.dx = dx
        self.n = n


class Config:
    def __init__(self) -> None:
        self.grid = Grid(0.1, 16)
        self.name = "default"


CONFIG = Config()


class Stats:
    def __init__(self) -> None:
        self.calls = 0
        self.total = 0.0


STATS = Stats()


def pure_scalars(x, y):
    """x in, y in, return out; no flags."""
    return x * y + 1.0


def reads_global(x):
    """x in, global GAIN in."""
    return x * GAIN


def unused_arg(x, verbose):
    """x in, verbose unused."""
    return x + 1.0


def nested_global_attr(x):
    """x in, global CONFIG.grid.dx in (CONFIG.grid.n and CONFIG.name untouched)."""
    return x * CONFIG.grid.dx


def writes_global(x):
    """x in, global LAST out."""
    global LAST
    LAST = 2.0 * x


def new_array(n, scale):
    """n in, scale in, return: a newly allocated array."""
    return np.linspace(0.0, 1.0, n) * scale


def mutates_inplace(u, k):
    """u inout (read, then written in place), k in."""
    u *= k


def fills_buffer(x, out):
    """x in; out is written before it is read (out), return out."""
    out[:] = 2.0 * x
    return float(out.sum())


@dataclass
class Particle:
    vx: float
    ax: float
    e: float = 0.0
    tag: int = 0


def kick(p, dt):
    """p.vx inout, p.ax in, p.e out, dt in; p.tag unused."""
    p.vx = p.vx + p.ax * dt
    p.e = 0.5 * p.vx * p.vx


@dataclass
class State:
    t: float
    y: np.ndarray


def _advance(s, dt):
    s.t = s.t + dt
    s.y[:] = s.y * (1.0 - dt)


def via_helper(state, dt):
    """The write happens in a helper: state.t inout, state.y inout, dt in."""
    _advance(state, dt)


def uses_random(x):
    """x in; flagged random and nondeterministic."""
    return x + random.random()


def seeded_random(x):
    """A seeded local generator: deterministic, not flagged."""
    rng = np.random.default_rng(1234)
    return x + rng.normal()


def prints(x):
    """x in, return out; flagged io (print)."""
    print("x is", x)
    return 2.0 * x


@dataclass
class Hit:
    x: float
    y: float
    t: float = 0.0


def fit_line(hits):
    """hits[*].x and hits[*].y in (ragged: any number of hits), hits[*].t unused; returns (slope, intercept)."""
    n = len(hits)
    sx = sum(h.x for h in hits)
    sy = sum(h.y for h in hits)
    sxx = sum(h.x * h.x for h in hits)
    sxy = sum(h.x * h.y for h in hits)
    slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
    return slope, (sy - slope * sx) / n


def branchy(x, mode):
    """The example takes mode > 0; the other branch appends to HISTORY (static analysis only)."""
    if mode > 0:
        return 2.0 * x
    HISTORY.append(x)
    return x


def scratch_global(x):
    """WORK is used as scratch space and restored: scratch; x in."""
    WORK[:] = x
    s = float(WORK.sum())
    WORK[:] = 0.0
    return s


def make_scaled(factor):
    def scaled(x):
        """x in, closure factor in."""
        return x * factor

    return scaled


scaled_by_3 = make_scaled(3.0)


def writes_file(x, path="/nonexistent/phasm-never-written.txt"):
    """Flagged io statically; the example never reaches the write (x <= 0)."""
    if x > 0:
        with open(path, "w") as fh:
            fh.write(str(x))
    return x


def dict_config(cfg, x):
    """cfg['dt'] in, cfg['unused'] untouched, x in."""
    return x * cfg["dt"]


class Step:
    """An encapsulated object: the deposit is reached through get_edep/set_edep."""

    def __init__(self) -> None:
        self._edep = 0.0

    def get_edep(self) -> float:
        return self._edep

    def set_edep(self, value: float) -> None:
        self._edep = float(value)


@dataclass
class Primary:
    energy: float


def deposit(particle, step):
    """particle.energy in, step._edep out through set_edep (proposed as phasm.setter)."""
    step.set_edep(0.5 * particle.energy)


@dataclass
class Fit:
    slope: float
    intercept: float


@dataclass
class Track:
    hits: list
    fit: object = None


def attach_fit(track):
    """Creates an object and keeps it: track.fit.slope and track.fit.intercept out."""
    slope, intercept = fit_line(track.hits)
    track.fit = Fit(slope, intercept)


def fit_object(hits):
    """Returns an object: return.slope and return.intercept out."""
    return Fit(*fit_line(hits))


@dataclass
class Cluster:
    x: float
    e: float


def find_clusters(energies, threshold):
    """Returns a variable-length list of objects: return[*].x, return[*].e out (ragged)."""
    return [Cluster(float(i), float(e)) for i, e in enumerate(energies) if e > threshold]


def counts_calls(x):
    """STATS.calls and STATS.total inout (global object attributes updated in place), x in."""
    STATS.calls += 1
    STATS.total = STATS.total + x
    return x


def mark_hits(hits, cut):
    """hits[*].x in, hits[*].used out (a new attribute on every hit): one inout collection."""
    for h in hits:
        h.used = h.x > cut


def positive_part(signal):
    """Returns an array whose length depends on the data."""
    return signal[signal > 0]
