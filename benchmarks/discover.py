"""Cost of interface discovery (`phasm inspect`): a traced call against a plain one.

Run: .venv/bin/python benchmarks/discover.py        (prints a table; ~15 s)

For three kinds of function -- numpy-vectorised (the heat example's SOR
solver), element-by-element Python loops over a numpy array (every element
read goes through the traced array's hooks: the worst case), and a loop over a
list of objects (class-swapped, attribute reads logged) -- it measures in the
same run: one plain call, one traced call (``trace_call``, no purity runs),
and a whole ``inspect_function`` (static analysis + traced call + two purity
runs).  Ratios are traced / plain.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "heat"))

from phasm.discover import inspect_function  # noqa: E402
from phasm.discover.dynamic import trace_call  # noqa: E402


def gauss_seidel_loops(f, u, sweeps=10):
    """Plain Python loops, one element at a time."""
    n = u.shape[0]
    for _ in range(sweeps):
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                u[i, j] = 0.25 * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1] + u[i, j + 1] + f[i, j])


@dataclass
class Hit:
    x: float
    y: float
    t: float


def fit_line(hits):
    n = len(hits)
    sx = sum(h.x for h in hits)
    sy = sum(h.y for h in hits)
    sxx = sum(h.x * h.x for h in hits)
    sxy = sum(h.x * h.y for h in hits)
    slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
    return slope, (sy - slope * sx) / n


def best(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    import heat

    rng = np.random.default_rng(0)
    n = heat.N
    f_heat = heat.random_sources(1, n, seed=0)[0]
    f_small = rng.uniform(0, 1, (24, 24))
    hits = [Hit(float(x), float(2 * x + 1), 0.0) for x in rng.uniform(0, 1, 2000)]
    cases = [
        (f"heat example, numpy SOR, {n}x{n}", heat.solve, lambda: (f_heat, np.zeros((n, n)))),
        ("python loops, 24x24, 10 sweeps", gauss_seidel_loops, lambda: (f_small, np.zeros((24, 24)))),
        ("2000 hit objects, line fit", fit_line, lambda: ([Hit(h.x, h.y, h.t) for h in hits],)),
    ]
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPU cores, no GPU; "
          f"python {platform.python_version()}, numpy {np.__version__}")
    header = f"{'function':36s} {'plain ms':>9s} {'traced ms':>10s} {'ratio':>7s} {'inspect ms':>11s} {'ratio':>7s}"
    print(header)
    print("-" * len(header))
    for label, fn, make in cases:
        plain = best(lambda: fn(*make()))
        traced = best(lambda: trace_call(fn, make(), {}, purity=False))
        full = best(lambda: inspect_function(fn, [(make(), {})]), repeat=2)
        print(f"{label:36s} {plain * 1e3:9.2f} {traced * 1e3:10.2f} {traced / plain:7.1f} {full * 1e3:11.2f} "
              f"{full / plain:7.1f}")


if __name__ == "__main__":
    main()
