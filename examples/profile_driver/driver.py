"""A simulation loop: one replaceable expensive call per step, plus work that stays.

    python driver.py [--steps N] [--model DIR]

Each step draws parameters, calls ``kernels.heat_midpoint`` (replaceable:
about half the run), then does bookkeeping in plain Python (stays) and
writes a log line with a short wait (off-CPU, stays). The call mode comes
from ``PHASM_CALL_MODE`` (original, capture, auto, ...).
"""

from __future__ import annotations

import argparse
import random
import time

import kernels


def bookkeeping(values: list[float], x: float) -> float:
    """Non-replaceable CPU work: keep a sorted window of results and a running statistic."""
    values.append(x)
    if len(values) > 400:
        del values[0]
    acc = 0.0
    for k in range(200):
        window = sorted(values)
        acc += sum(v * v for v in window[k::7])
    return acc


def write_log(step: int, x: float) -> None:
    """Non-replaceable waiting: stands in for I/O (off-CPU)."""
    time.sleep(0.0003)


def run(steps: int) -> float:
    rng = random.Random(42)
    values: list[float] = []
    total = 0.0
    for step in range(steps):
        alpha = rng.uniform(0.5, 2.0)
        source = rng.uniform(0.0, 1.0)
        t_end = rng.uniform(0.02, 0.05)
        x = kernels.heat_midpoint(alpha, source, t_end)
        total += bookkeeping(values, x)
        write_log(step, x)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--model", default=None, help="model folder to load (for auto/model modes)")
    args = ap.parse_args()
    if args.model:
        kernels.heat_midpoint.load(args.model)
    t0 = time.perf_counter()
    run(args.steps)
    elapsed = time.perf_counter() - t0
    kernels.heat_midpoint.close()
    print(f"steps={args.steps} mode={kernels.heat_midpoint.mode.value} elapsed_s={elapsed:.4f}")


if __name__ == "__main__":
    main()
