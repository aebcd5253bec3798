"""Capture a binomial-tree option pricer, train a surrogate with a certified gate, export it to C++ and Fortran.

The original is a Cox-Ross-Rubinstein tree with ``STEPS`` steps pricing a European call
(``O(STEPS**2)`` per call: slow enough to be worth replacing, exact enough to be the reference).
The same tree is written in C++ (``pricer.cpp``) and in Fortran (``pricer.f90``): those programs
call the exported surrogate and fall back to their own tree when the gate says no.

    python examples/native/pricer.py --out examples/native/build      # capture, train, save, export
    make -C examples/native                                          # also builds and runs the programs

Environment for the tests: ``--captures``/``--epochs`` make it small.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import phasm

STEPS = 200
LOW = np.array([80.0, 80.0, 0.0, 0.1, 0.25])  # S, K, r, v, T
HIGH = np.array([120.0, 120.0, 0.05, 0.5, 2.0])
TOLERANCE = phasm.Tolerance(rel=0.01, abs=0.05, max_miss_rate=0.01)  # 1% or 5 cents; at most 1% of answers beyond


def crr_call(S: np.ndarray, K: np.ndarray, r: np.ndarray, v: np.ndarray, T: np.ndarray) -> np.ndarray:
    """European call by a CRR binomial tree, vectorised over rows (arrays of one length)."""
    S, K, r, v, T = (np.asarray(a, np.float64).reshape(-1) for a in (S, K, r, v, T))
    dt = T / STEPS
    u = np.exp(v * np.sqrt(dt))
    p = (np.exp(r * dt) - 1.0 / u) / (u - 1.0 / u)
    disc = np.exp(-r * dt)
    j = np.arange(STEPS + 1)
    V = np.maximum(S[:, None] * u[:, None] ** (2 * j - STEPS) - K[:, None], 0.0)
    a, b = (disc * p)[:, None], (disc * (1.0 - p))[:, None]
    for i in range(STEPS, 0, -1):  # V[j] <- disc (p V[j + 1] + (1 - p) V[j])
        V = a * V[:, 1 : i + 1] + b * V[:, :i]
    return V[:, 0]


def make_pricer(store: Path) -> phasm.Surrogate:
    return phasm.surrogate(crr_call, name="pricer.crr_call", store=store, batched=True, tolerance=TOLERANCE)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "build", help="folder for captures, model, exported code")
    ap.add_argument("--captures", type=int, default=40000, help="rows to capture (default 40000)")
    ap.add_argument("--epochs", type=int, default=150, help="training epochs (default 150)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    store = out / "captures" / "pricer.h5"
    store.unlink(missing_ok=True)
    price = make_pricer(store)

    t0 = time.perf_counter()
    price.mode = "capture"
    rows = np.random.default_rng(args.seed).uniform(LOW, HIGH, (args.captures, 5))
    for block in np.array_split(rows, max(1, len(rows) // 5000)):
        price(*block.T)
    price.flush()
    print(f"1. captured {args.captures} calls of the {STEPS}-step tree in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    import torch

    torch.set_num_threads(1)
    result = price.train("torch", hidden=(64, 64), epochs=args.epochs, batch_size=256, lr=3e-3, threads=1, seed=args.seed)
    print(f"2. trained a 5 -> 64 -> 64 -> 1 MLP in {time.perf_counter() - t0:.1f} s; {price.calibration}")
    print(f"   {result.summary().splitlines()[0]}")
    price.save(out / "model")
    price.close()

    from phasm.export import export_model

    for lang in ("cpp", "fortran"):
        written = export_model(out / "model", lang, "pricer", out)
        print(f"3. exported ({lang}): " + ", ".join(p.name for p in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
