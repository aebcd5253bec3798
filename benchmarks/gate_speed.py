"""Cost of the certified gate in ``auto`` mode: model + gate against the model alone, per row.

    python benchmarks/gate_speed.py [--epochs 30] [--reps 15]

The model and gate of ``benchmarks/native.py`` (a 5 -> 64 -> 64 -> 1 torch MLP on Black-Scholes
prices, run by onnxruntime; a ConformalGate over a kNN domain of 2048 reference rows, residual
score, edge regions).  At batch 1, 64 and 4096 rows: ``art.predict(X)`` (model alone) and
``gate.predict_accept(X, art)`` (model + gate, what ``auto`` mode calls), each the median over
``--reps`` interleaved windows, wall clock, per row.  The last column repeats model + gate on the
previous path, still in the code: at batch 1 the batched computation on one row (which every call
went through before the one-row path); for batches, the k-d tree searched on one thread.
Targets: at batch 1, model + gate <= 3x the model alone; per row at 4096, the gate's own cost
(model + gate minus model) half of the previous path's.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import native  # noqa: E402  (the benchmark's model and gate)

import phasm.gate.domain as domain_module  # noqa: E402


def per_row(f, X: np.ndarray, calls: int) -> tuple[float, float]:
    """Wall and CPU (this process, all threads) seconds per row of ``calls`` calls of ``f``, one
    batch of rows of ``X`` per call."""
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(calls):
        f(X[i % len(X)])
    rows = calls * len(X[0])
    return (time.perf_counter() - t0) / rows, (time.process_time() - c0) / rows


def previous(gate, art, batch: int):
    """Model + gate as before the one-row path / the threaded search (same decisions)."""
    if batch == 1:
        def run(X):
            Y, score, band = gate._evaluate(X, art)
            ok = np.isfinite(score) & (score <= gate.thresholds_[band.astype(np.int64)])
            return Y, ok & np.isfinite(X).all(1) & np.isfinite(Y).all(1)
        return run

    def run_single_thread(X):
        old, domain_module.PARALLEL_ROWS = domain_module.PARALLEL_ROWS, 1 << 62
        try:
            return gate.predict_accept(X, art)
        finally:
            domain_module.PARALLEL_ROWS = old
    return run_single_thread


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args()
    art, gate, t_train = native.train(args.epochs, 0)
    rng = np.random.default_rng(1)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}; shared, no GPU")
    print(f"gate: {gate.domain.describe()}, {len(gate.domain.reference_)} reference rows, score {gate.score_}, "
          f"{gate.regions_.n_bands} bands (trained in {t_train:.0f} s)")
    print("\nper row, us: wall clock (CPU time of this process, all threads, in brackets; the other jobs"
          " on the machine inflate wall clock, not CPU time)")
    print(f"{'batch':>6} {'model':>14} {'model + gate':>16} {'ratio':>11} {'gate alone':>16} "
          f"{'previous path':>16} {'previous gate':>16}")
    for batch, calls in ((1, 2000), (64, 200), (4096, 4)):
        X = rng.uniform(native.LOW, native.HIGH, (max(calls, 8), batch, 5)).astype(np.float32)
        # the decisions are the same on either path
        _, acc = gate.predict_accept(X[0], art)
        assert np.array_equal(acc, previous(gate, art, batch)(X[0])[1])
        fs = {"model": lambda x: art.predict(x), "gate": lambda x: gate.predict_accept(x, art),
              "previous": previous(gate, art, batch)}
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in fs}
        for k, f in fs.items():  # warm
            per_row(f, X, max(calls // 10, 1))
        for _ in range(args.reps):
            for k, f in fs.items():
                times[k].append(per_row(f, X, calls))
        (m, mc), (g, gc), (p, pc) = (np.median(np.array(times[k]) * 1e6, axis=0) for k in ("model", "gate", "previous"))
        print(f"{batch:>6} {m:>6.2f} ({mc:>5.2f}) {g:>7.2f} ({gc:>6.2f}) {g / m:>4.1f} ({gc / mc:>4.1f}) "
              f"{g - m:>7.2f} ({gc - mc:>6.2f}) {p:>7.2f} ({pc:>6.2f}) {p - m:>7.2f} ({pc - mc:>6.2f})")


if __name__ == "__main__":
    main()
