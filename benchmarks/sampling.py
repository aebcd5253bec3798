"""phasm.sample on local Dask workers vs a serial loop, on a 50 ms (sleep-dominated) function.

    python benchmarks/sampling.py [--n 400] [--workers 4]

Goal: 400 calls with 4 local workers >= 3x faster than calling the function
400 times in a loop, and the store holds exactly 400 rows, each output equal to
the function of its input.  Times: the serial loop; ``phasm.sample`` in this
process (``workers=0``: the capture overhead alone); ``phasm.sample`` on a
LocalCluster that is already running, its first run (the workers import phasm
and h5py) and a second run into another store; and end to end, starting the
cluster (``workers=4``).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SPACE = {"x": (0.0, 1.0), "y": (1.0, 100.0, "log")}


def slow(x: float, y: float) -> float:
    """A call that waits 50 ms (a solver, I/O, a license server) and then computes."""
    time.sleep(0.05)
    return x * math.log(y)


def check(store: Path, n: int) -> str:
    from phasm.store import CaptureStore

    cs = CaptureStore(store)
    ins, outs = cs.read()
    ok = len(cs) == n and np.array_equal(outs["result"], ins["x"] * np.log(ins["y"]))
    unique = len({(a, b) for a, b in zip(ins["x"].tolist(), ins["y"].tolist())}) == len(cs)
    return f"{len(cs)} rows, {'all equal to fn(input)' if ok else 'MISMATCH'}, {'no duplicates' if unique else 'DUPLICATES'}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    from phasm.sampling import Space, sample, unit_design

    work = Path(tempfile.mkdtemp(prefix="phasm-sampling-"))
    rows = []
    try:
        points = Space(SPACE).from_unit(unit_design(2, args.n, "sobol"))
        t0 = time.perf_counter()
        for x, y in points:
            slow(float(x), float(y))
        serial = time.perf_counter() - t0
        rows.append(("serial loop (no capture)", serial, "-"))

        t0 = time.perf_counter()
        sample(slow, SPACE, args.n, store=work / "inproc.h5", workers=0, progress=False)
        rows.append(("phasm.sample, workers=0 (this process)", time.perf_counter() - t0, check(work / "inproc.h5", args.n)))

        t0 = time.perf_counter()
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None) as lc, Client(lc) as c:
            started = time.perf_counter() - t0
            t1 = time.perf_counter()
            sample(slow, SPACE, args.n, store=work / "first.h5", client=c, progress=False)
            first = time.perf_counter() - t1
            t1 = time.perf_counter()
            sample(slow, SPACE, args.n, store=work / "warm.h5", client=c, progress=False)
            warm = time.perf_counter() - t1
        rows.append((f"phasm.sample, new cluster of {args.workers}, first run", first, check(work / "first.h5", args.n)))
        rows.append((f"phasm.sample, same cluster, next run", warm, check(work / "warm.h5", args.n)))

        t0 = time.perf_counter()
        res = sample(slow, SPACE, args.n, store=work / "cold.h5", workers=args.workers, progress=False)
        cold = time.perf_counter() - t0
        rows.append((f"phasm.sample, workers={args.workers} (starts the cluster)", cold, check(work / "cold.h5", args.n)))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.n} calls of a 50 ms function, {args.workers} local Dask workers "
          f"(cluster start alone: {started:.1f} s)")
    print(f"{'run':<46}{'seconds':>9}{'calls/s':>9}{'speedup':>9}  store")
    for name, sec, note in rows:
        print(f"{name:<46}{sec:>9.2f}{args.n / sec:>9.1f}{serial / sec:>8.2f}x  {note}")
    speedup = serial / warm
    print(f"\nspeedup on a running cluster: {speedup:.2f}x (goal >= 3x; its first run {serial / first:.2f}x); "
          f"end to end with cluster start: {serial / cold:.2f}x; rows/s reported by phasm: {res.rows_per_second:.1f}")
    return 0 if speedup >= 3.0 else 1


if __name__ == "__main__":
    sys.exit(main())
