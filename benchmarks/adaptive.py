"""Adaptive sampling vs one-shot Sobol: original calls needed for the same fallback rate.

    python benchmarks/adaptive.py [--workers 2] [--backend torch|ensemble|gp] [--rel 0.02] [--quick]   (~5 min)

The function has a localised feature: a smooth plane plus a narrow bump (width
0.05 in a unit square).  For one-shot Sobol designs of growing size, and for an
adaptive run (a Sobol start, then rounds that add rows where the gate is least
sure), each trained model (one torch MLP by default) and its certified gate (tolerance 2% relative, at most
5% misses at 95% confidence) are tested on 20,000 uniform points with the true
function: the fallback rate (calls sent back to the original) and the miss rate
among the calls the gate trusted.  The table ends with the calls each method
needed to reach the fallback rate of the largest Sobol design.
Everything runs through ``phasm.sample`` on a Dask LocalCluster.
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

import phasm
from phasm.sampling import SampleRun, sample
from phasm.sampling.run import SampleResult

SPACE = {"x": (0.0, 1.0), "y": (0.0, 1.0)}
CENTRE, WIDTH = (0.7, 0.3), 0.05


def bump(x: float, y: float) -> float:
    """A plane with a narrow Gaussian bump: most of the square is easy, one small spot is not."""
    return 1.0 + x + 0.5 * y + 2.0 * math.exp(-((x - CENTRE[0]) ** 2 + (y - CENTRE[1]) ** 2) / (2 * WIDTH**2))


def bump_vec(X: np.ndarray) -> np.ndarray:
    x, y = X[:, 0], X[:, 1]
    return 1.0 + x + 0.5 * y + 2.0 * np.exp(-((x - CENTRE[0]) ** 2 + (y - CENTRE[1]) ** 2) / (2 * WIDTH**2))


def test_on_uniform(art, gate, spec, tol: phasm.Tolerance, X: np.ndarray, Y: np.ndarray) -> tuple[float, float]:
    """Fallback rate and miss rate among trusted calls on uniform test points."""
    Y_pred, trusted = gate.predict_accept(X.astype(np.float32), art)
    miss = tol.misses(spec, Y[:, None], Y_pred.astype(np.float64))
    return float(1 - trusted.mean()), float(miss[trusted].mean()) if trusted.any() else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--backend", default="torch", choices=["torch", "ensemble", "gp"],
                    help="torch: one MLP (gate score: its error at the nearest training rows); ensemble: 5 MLPs")
    ap.add_argument("--rel", type=float, default=0.02, help="tolerance, relative error per call")
    ap.add_argument("--quick", action="store_true", help="smaller designs (a smoke run)")
    args = ap.parse_args()
    from distributed import Client, LocalCluster
    from phasm.gate.calibrate import train_calibrated
    from phasm.store import CaptureStore

    tol = phasm.Tolerance(rel=args.rel, max_miss_rate=0.05)
    mlp = {"hidden": [64, 64], "epochs": 100, "lr": 3e-3, "batch_size": 64, "skip": True, "threads": 1}
    if args.backend == "gp":
        train: dict = {"backend": "gp", "max_train": 1500}
    elif args.backend == "ensemble":
        train = {"backend": "ensemble", "member": "torch", "k": 5, "member_params": mlp}
    else:
        train = {"backend": "torch", **mlp}
    sobol_sizes = [512, 1024, 2048] if args.quick else [512, 1024, 2048, 4096]
    start, batch, rounds = (512, 256, 4) if args.quick else (512, 256, 8)
    rng = np.random.default_rng(1)
    X_test = rng.random((20000, 2))
    Y_test = bump_vec(X_test)
    work = Path(tempfile.mkdtemp(prefix="phasm-adaptive-"))
    rows: list[tuple[str, int, float, float, bool]] = []
    t_all = time.perf_counter()
    try:
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None) as lc, Client(lc) as client:
            for n in sobol_sizes:
                store = work / f"sobol{n}.h5"
                sample(bump, SPACE, n, store=store, client=client, progress=False)
                cs = CaptureStore(store)
                params = dict(train)
                backend = params.pop("backend")
                if backend == "ensemble":
                    params["client"] = client
                art, _, gate = train_calibrated(cs, cs.spec, tol, backend=backend, **params)
                fb, miss = test_on_uniform(art, gate, cs.spec, tol, X_test, Y_test)
                rows.append(("sobol", len(cs), fb, miss, gate.report_.certified))
                print(f"sobol {len(cs):5d} calls: fallback {fb:.2%}, miss among trusted {miss:.2%}", flush=True)

            def on_round(report, art, gate):
                fb, miss = test_on_uniform(art, gate, art.spec, tol, X_test, Y_test)
                rows.append(("adaptive", report.calls, fb, miss, gate.report_.certified))
                print(f"adaptive round {report.round}: {report.calls:5d} calls: fallback {fb:.2%} "
                      f"(pool estimate {report.fallback_rate:.2%}), miss among trusted {miss:.2%}", flush=True)

            res: SampleResult = sample(bump, SPACE, start, store=work / "adaptive.h5", client=client, progress=False,
                                       adaptive=rounds, adaptive_batch=batch, tolerance=tol, train_params=train,
                                       on_round=on_round)
            run_points = SampleRun.load(work / "adaptive.h5").points[start:]
            near = float(np.mean(np.hypot(run_points[:, 0] - CENTRE[0], run_points[:, 1] - CENTRE[1]) < 3 * WIDTH))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nAdaptive vs one-shot Sobol ({args.backend}, tolerance {args.rel:.0%} relative, max 5% misses at 95%; "
          f"{args.workers} Dask workers; {time.perf_counter() - t_all:.0f} s in all)")
    print(f"{'design':<10}{'calls':>7}{'fallback':>10}{'miss|trusted':>14}{'certified':>11}")
    for name, calls, fb, miss, cert in rows:
        print(f"{name:<10}{calls:>7}{fb:>10.2%}{miss:>14.2%}{str(cert):>11}")
    target = [fb for name, _, fb, _, _ in rows if name == "sobol"][-1]
    if target >= 1.0:
        print("the largest Sobol design did not certify a gate: no fallback rate to compare")
        return 1
    sobol_calls = min(c for name, c, fb, _, _ in rows if name == "sobol" and fb <= target)
    reached = [c for name, c, fb, _, _ in rows if name == "adaptive" and fb <= target]
    print(f"\nadaptive rows within 3 widths of the bump: {near:.1%} (uniform: {math.pi * (3 * WIDTH) ** 2:.1%})")
    if reached:
        saving = 1 - min(reached) / sobol_calls
        print(f"fallback <= {target:.2%}: Sobol {sobol_calls} calls, adaptive {min(reached)} calls: "
              f"{saving:.0%} fewer (goal >= 30%)")
        return 0 if saving >= 0.30 else 1
    print(f"adaptive did not reach the Sobol fallback rate {target:.2%} within {rounds} rounds")
    return 1


if __name__ == "__main__":
    sys.exit(main())
