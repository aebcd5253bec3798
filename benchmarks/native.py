"""A surrogate and its gate exported to C (`phasm export`): answers and decisions against Python, speed against onnxruntime.

    python benchmarks/native.py [--rows 10000] [--epochs 100] [--json results.json]

One run: a 5 -> 64 -> 64 -> 1 torch MLP (silu) is trained on Black-Scholes prices with a certified
gate (tolerance: 1% or 5 cents, at most 1% of trusted answers beyond it; kNN domain over 2048
reference rows and the residual score), exported to C, compiled by the system compilers, and:

* answers: the C ``model`` function against phasm's Python ``model`` mode, and the C gate's
  decision against Python's ``auto`` mode, on ``--rows`` random in-range rows (target: within
  1e-5 relative; decisions equal on >= 99.9%, the others explained);
* speed, timed in C in windows of 100 calls (the median window, per call): ``NAME_predict`` at
  batch 1 (model + gate), ``NAME_model`` (model alone) and ``NAME_predict_batch`` at 1024 rows per
  row, for gcc and clang at ``-O2`` and ``-O3 -march=native``; against onnxruntime (1 thread, its
  Python API, a preallocated input) on the same network (without the gate or the standardisation)
  at batch 1 and 1024 (targets: <= 1 us and >= 5x faster than onnxruntime at batch 1; the batch
  function within 1.5x of onnxruntime per row at 1024).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import phasm
from phasm.export import NativeModel, compare, compile_shared, export_model, sample_rows
from phasm.gate import train_calibrated

LOW = np.array([80.0, 80.0, 0.0, 0.1, 0.25])  # S, K, r, v, T
HIGH = np.array([120.0, 120.0, 0.05, 0.5, 2.0])
SPEC = phasm.Spec.from_declarations("bench.black_scholes", {k: phasm.Scalar() for k in ("S", "K", "r", "v", "T")},
                                    {"price": phasm.Scalar()})
WINDOW = 100

HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "bs.h"

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
static double median(double *v, int n) { qsort(v, (size_t)n, sizeof *v, cmp); return v[n / 2]; }

int main(int argc, char **argv) {
    size_t n, i, count = 0;
    if (argc != 5) return 2;
    n = strtoul(argv[2], NULL, 10);
    int windows = atoi(argv[3]), batches = atoi(argv[4]), w;
    double *in = malloc(n * BS_N_IN * sizeof *in), *out = malloc(1024 * BS_N_OUT * sizeof *out);
    double *tp = malloc(windows * sizeof *tp), *tm = malloc(windows * sizeof *tm), *tb = malloc(batches * sizeof *tb), t0;
    unsigned char *acc = malloc(1024);
    FILE *f = fopen(argv[1], "rb");
    if (!f || fread(in, sizeof *in, n * BS_N_IN, f) != n * BS_N_IN) return 1;
    fclose(f);
    for (w = 0; w < windows; ++w) {
        const double *x = in + ((size_t)w * WINDOW % (n - WINDOW)) * BS_N_IN;
        t0 = now();
        for (i = 0; i < WINDOW; ++i) count += (size_t)bs_predict(x + i * BS_N_IN, out + i % 1024);
        tp[w] = (now() - t0) / WINDOW;
        t0 = now();
        for (i = 0; i < WINDOW; ++i) count += (size_t)bs_model(x + i * BS_N_IN, out + i % 1024);
        tm[w] = (now() - t0) / WINDOW;
    }
    for (w = 0; w < batches; ++w) {
        const double *x = in + ((size_t)w * 1024 % (n - 1024)) * BS_N_IN;
        t0 = now();
        count += bs_predict_batch(1024, x, out, acc);
        tb[w] = (now() - t0) / 1024;
    }
    printf("{\"predict\": %.6g, \"model\": %.6g, \"batch\": %.6g, \"count\": %zu}\n",
           median(tp, windows), median(tm, windows), median(tb, batches), count);
    return 0;
}
""".replace("WINDOW", str(WINDOW))


def black_scholes(X: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    S, K, r, v, T = X.T
    d1 = (np.log(S / K) + (r + 0.5 * v * v) * T) / (v * np.sqrt(T))
    d2 = d1 - v * np.sqrt(T)
    return (S * ndtr(d1) - K * np.exp(-r * T) * ndtr(d2))[:, None]


def train(epochs: int, seed: int) -> tuple:
    X = np.random.default_rng(seed).uniform(LOW, HIGH, (40000, 5))
    tol = phasm.Tolerance(rel=0.01, abs=0.05, max_miss_rate=0.01)
    t0 = time.perf_counter()
    art, _, gate = train_calibrated((X, black_scholes(X)), SPEC, tol, backend="torch", hidden=(64, 64), epochs=epochs,
                                    batch_size=256, lr=3e-3, threads=1, seed=seed)
    return art, gate, time.perf_counter() - t0


def c_timings(folder: Path, rows_file: Path, n: int, configs: list[tuple[str, str]]) -> dict[str, dict[str, float]]:
    (folder / "harness.c").write_text(HARNESS)
    out = {}
    for cc, flags in configs:
        exe = folder / f"harness_{cc}_{flags.replace(' ', '').replace('-', '')}"
        subprocess.run([cc, "-std=c99", "-D_POSIX_C_SOURCE=199309L", "-Wall", "-Wextra", "-Werror", *flags.split(),
                        f"-I{folder}", str(folder / "harness.c"), "-o", str(exe), "-lm"], check=True)
        res = json.loads(subprocess.run([str(exe), str(rows_file), str(n), "3000", "400"], check=True,
                                        capture_output=True, text=True).stdout)
        out[f"{cc} {flags}"] = res
    return out


def ort_timings(module, X: np.ndarray) -> dict[str, float]:
    import onnxruntime as ort
    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.cpu().eval(), (torch.zeros(1, X.shape[1]),), buf, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
    Z = np.ascontiguousarray(X, np.float32)
    rows = [{"x": Z[i : i + 1]} for i in range(len(Z))]
    for feed in rows[:500]:
        sess.run(None, feed)
    per_call = []
    for w in range(1000):
        feeds = rows[(w * WINDOW) % (len(rows) - WINDOW):][:WINDOW]
        t0 = time.perf_counter()
        for feed in feeds:
            sess.run(None, feed)
        per_call.append((time.perf_counter() - t0) / WINDOW)
    batch = []
    for w in range(400):
        feed = {"x": Z[(w * 1024) % (len(Z) - 1024):][:1024]}
        t0 = time.perf_counter()
        sess.run(None, feed)
        batch.append((time.perf_counter() - t0) / 1024)
    return {"batch1": float(np.median(per_call)), "batch1024": float(np.median(batch)), "version": ort.__version__}


def python_timings(art, gate, X: np.ndarray) -> dict[str, float]:
    X32 = np.ascontiguousarray(X, np.float32)
    model, auto = [], []
    for w in range(300):
        rows = [X32[i : i + 1] for i in range((w * WINDOW) % (len(X32) - WINDOW), (w * WINDOW) % (len(X32) - WINDOW) + WINDOW)]
        t0 = time.perf_counter()
        for x in rows:
            art.predict(x)
        model.append((time.perf_counter() - t0) / WINDOW)
        t0 = time.perf_counter()
        for x in rows:
            gate.predict_accept(x, art)
        auto.append((time.perf_counter() - t0) / WINDOW)
    return {"model": float(np.median(model)), "auto": float(np.median(auto))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    compilers = [c for c in ("gcc", "clang") if shutil.which(c)] or [c for c in ("cc",) if shutil.which(c)]
    if not compilers:
        print("no C compiler (gcc, clang or cc) on this machine: nothing to measure")
        return 1
    art, gate, t_train = train(args.epochs, args.seed)
    print(f"trained in {t_train:.0f} s; {gate.report_}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="phasm-bench-native-"))
    try:
        export_model(art, "c", "bs", tmp)
        X = sample_rows(art, args.rows, seed=args.seed + 1)
        lib = compile_shared(tmp, "bs", cc=compilers[0])
        check = compare(art, NativeModel(lib, "bs"), X)
        rows_file = tmp / "rows.bin"
        np.ascontiguousarray(X, np.float64).tofile(rows_file)
        configs = [(cc, flags) for cc in compilers for flags in ("-O2", "-O3 -march=native")]
        c = c_timings(tmp, rows_file, len(X), configs)
        Z = art.x_norm.transform(X)  # onnxruntime runs the network on standardised rows
        o = ort_timings(art.backend.module_, Z)
        py = python_timings(art, gate, X)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(args, art, gate, check, c, o, py, t_train)
    return 0


def report(args, art, gate, check, c, o, py, t_train) -> None:
    us = lambda s: f"{s * 1e6:.3g} us"  # noqa: E731
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} "
          f"(shared while measured); onnxruntime {o['version']}, 1 thread; {args.rows} in-range rows")
    print(f"\nanswers and decisions ({args.rows} rows):\n")
    print("| check | result | target |\n|---|---|---|")
    print(f"| C `model` vs Python `model` mode, within 1e-5 relative | {check.within_rel:.2%} of rows (worst "
          f"{check.max_rel_error:.1e} relative, {check.max_scaled_error:.1e} of the output's std) | all rows |")
    print(f"| C gate decision = Python `auto` mode's | {check.decisions_equal:.3%} (Python accepts "
          f"{check.python_accepted:.1%}, C {check.c_accepted:.1%}) | >= 99.9% |")
    print(f"| accepted answers, C vs Python `auto` | worst {check.gated_max_rel_error:.1e} relative | |")
    for d in check.disagreements[:5]:
        print(f"|   differs | {d} | |")
    print("\nspeed (median window of 100 calls, per call):\n")
    print("| build | `bs_predict` batch 1 (model + gate) | `bs_model` batch 1 | `bs_predict_batch` 1024, per row "
          "| onnxruntime batch 1 / predict | batch 1024: predict_batch / onnxruntime |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in c.items():
        print(f"| {name} | {us(r['predict'])} | {us(r['model'])} | {us(r['batch'])} | "
              f"{o['batch1'] / r['predict']:.1f}x | {r['batch'] / o['batch1024']:.2f}x |")
    print(f"| onnxruntime (network only, no gate) | {us(o['batch1'])} | | {us(o['batch1024'])} | | |")
    print(f"| phasm Python: `model` mode / gate + model (`predict_accept`) | {us(py['auto'])} | {us(py['model'])} | | | |")
    print("\ntargets: predict <= 1 us and >= 5x faster than onnxruntime at batch 1; predict_batch within 1.5x of "
          "onnxruntime per row at batch 1024 (onnxruntime runs the network only: no gate, no standardisation)")
    if args.json:
        args.json.write_text(json.dumps({"check": check.__dict__, "c": c, "onnxruntime": o, "python": py,
                                         "train_seconds": t_train, "certificate": str(gate.report_)}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
