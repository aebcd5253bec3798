"""Wrapper overhead: phasm in `original` and `capture` modes vs a bare call, and batched capture throughput.

Run: .venv/bin/python benchmarks/overhead.py      (prints a table; ~20 s)
"""

from __future__ import annotations

import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import phasm


def bare(S: float, K: float, r: float, v: float, T: float) -> float:
    return S - K + r * v * T


def per_call_us(fn, args, n: int, repeats: int = 5) -> float:
    best = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn(*args)
        best.append((time.perf_counter() - t0) / n * 1e6)
    return min(best)


def main() -> None:
    args = (100.0, 95.0, 0.02, 0.3, 1.0)
    n = 200_000
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        wrapped = phasm.surrogate(bare, mode="original", name="bench.bare")
        t_bare = per_call_us(bare, args, n)
        t_orig = per_call_us(wrapped, args, n)
        rows.append(("original mode, per call", t_orig, t_bare, t_orig - t_bare, "<= 1.5 us overhead"))

        cap = phasm.surrogate(bare, mode="capture", store=Path(tmp) / "cap.h5", name="bench.cap", flush_rows=4096)
        cap(*args)  # spec inference and file creation happen once, outside the timing
        t_bare2 = per_call_us(bare, args, n, repeats=3)
        t_cap = per_call_us(cap, args, n, repeats=3)
        cap.close()
        rows.append(("capture mode, per call (store write incl.)", t_cap, t_bare2, t_cap - t_bare2, "<= 10 us per call"))
        captured = len(phasm.store.CaptureStore(Path(tmp) / "cap.h5"))

        @phasm.surrogate(batched=True, mode="capture", store=Path(tmp) / "batch.h5", name="bench.batched")
        def vec(x: np.ndarray) -> np.ndarray:
            return x[:, :1] * 2.0

        x = np.random.default_rng(0).random((1_000_000, 16), dtype=np.float32)
        vec(x[:10])
        t0 = time.perf_counter()
        vec(x)
        vec.flush()
        dt = time.perf_counter() - t0
        t0 = time.perf_counter()
        vec.__wrapped__(x)
        dt_bare = time.perf_counter() - t0
        vec.close()
        rate = 1_000_000 / (dt - dt_bare)

    print(f"phasm wrapper overhead -- {platform.processor() or platform.machine()}, {sys.platform}, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    print(f"{'case':46s} {'phasm us':>9s} {'bare us':>8s} {'overhead':>9s}  target")
    for name, a, b, d, target in rows:
        print(f"{name:46s} {a:9.3f} {b:8.3f} {d:9.3f}  {target}")
    print(f"{'batched capture, 1e6 rows x 16 float32':46s} {rate / 1e6:9.1f} M rows/s{'':9s}  >= 5 M rows/s")
    print(f"(capture rows written: {captured})")


if __name__ == "__main__":
    main()
