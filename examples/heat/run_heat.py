"""The whole phasm loop on the heat-equation solver: capture, train, deploy in ``auto`` mode, measure.

Usage::

    python examples/heat/run_heat.py --out demo-output            # what `make demo` runs
    python examples/heat/run_heat.py --out /tmp/h --grid 12 --captures 300 --epochs 20   # a quick run

It leaves in ``--out``: the capture store (``captures/heat.h5``), the trained
model folder (``model/``), and ``summary.json`` + ``summary.md`` with the
error and timing table, and ``report.html`` (the surrogate's report, see docs/report.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default: demo-output)")
    p.add_argument("--grid", type=int, default=32, help="grid size N (N x N points, boundary included; default 32)")
    p.add_argument("--captures", type=int, default=4000, help="solves to capture for training (default 4000)")
    p.add_argument("--tests", type=int, default=200, help="unseen sources to evaluate on (default 200)")
    p.add_argument("--epochs", type=int, default=60, help="training epochs (default 60)")
    p.add_argument("--hidden", type=str, default="128,128", help="hidden layer widths (default 128,128)")
    p.add_argument("--batch", type=int, default=200, help="batch size of the batched timing (default 200)")
    p.add_argument("--batch-size", type=int, default=64, help="training mini-batch size (default 64)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--tolerance", type=float, default=0.02,
                   help="relative L2 error tolerance: training holds out a quarter of the captures to certify "
                        "the trust gate (default 0.02; 0: no calibrated gate, only NaN/inf checks)")
    p.add_argument("--max-miss-rate", type=float, default=0.01,
                   help="allowed share of trusted calls beyond the tolerance (default 0.01)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: fastest on a small or busy CPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    store = out / "captures" / "heat.h5"
    if store.exists():
        store.unlink()
    shutil.rmtree(Path(str(store) + ".shards"), ignore_errors=True)
    # heat.py reads these when it is imported (the decorator needs the grid size and the store path).
    os.environ["HEAT_N"] = str(args.grid)
    os.environ["HEAT_STORE"] = str(store)
    if args.tolerance:
        os.environ["HEAT_TOL"] = str(args.tolerance)
        os.environ["HEAT_MISS"] = str(args.max_miss_rate)
    else:
        os.environ.pop("HEAT_TOL", None)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import heat  # noqa: E402

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.table import Table

    import torch

    torch.set_num_threads(args.threads)  # training and inference; see --threads
    console = Console(quiet=args.quiet)
    N = heat.N

    def progress() -> Progress:
        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("ETA"), TimeRemainingColumn(), console=console, disable=args.quiet)

    console.rule("[bold]phasm heat-equation demo")
    console.print(f"The function: a Gauss-Seidel/SOR solver (omega {heat.OMEGA}) of -laplace(u) = f on a {N}x{N} grid, "
                  f"to a relative tolerance of {heat.TOL:g}. It writes the temperature u in place.")

    # 1. capture -----------------------------------------------------------
    console.print(f"\n[bold]1. Capture[/]: run the real solver on {args.captures} random smooth heat sources; "
                  "phasm records every input and output.")
    heat.heat.mode = "capture"
    sources = heat.random_sources(args.captures, seed=args.seed + 1)
    t0 = time.perf_counter()
    with progress() as bar:
        task = bar.add_task("solving + capturing", total=args.captures)
        for f in sources:
            u = np.zeros((N, N))
            heat.heat(f, u)
            bar.advance(task)
    t_capture = time.perf_counter() - t0
    heat.heat.flush()
    console.print(f"   {args.captures} solves in {t_capture:.1f} s ({t_capture / args.captures * 1e3:.1f} ms each), stored in {store}")

    # 2. train -------------------------------------------------------------
    hidden = tuple(int(h) for h in args.hidden.split(",") if h)
    console.print(f"\n[bold]2. Train[/]: an MLP {hidden} with a linear skip path (torch), "
                  f"{args.epochs} epochs, 20% of the captures held out for validation.")
    result = heat.heat.train("torch", hidden=hidden, skip=True, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             threads=args.threads,
                             seed=args.seed, verbose=not args.quiet)
    console.print("   " + result.summary().replace("\n", "\n   "))
    gate_info = {"gate": type(heat.heat.gate).__name__}
    report = getattr(heat.heat, "calibration", None)
    if report is not None:
        gate_info.update({k: report[k] if isinstance(report, dict) else getattr(report, k, None)
                          for k in ("certified", "miss_rate_bound", "expected_fallback_rate", "n_calibration")
                          if (k in report if isinstance(report, dict) else hasattr(report, k))})
        console.print(f"   trust gate: {gate_info}")
    model_dir = heat.heat.save(out / "model")
    console.print(f"   model saved to {model_dir}")

    # 3. deploy in auto mode on unseen sources ------------------------------
    console.print(f"\n[bold]3. Deploy[/]: mode 'auto' (model behind the trust gate, fallback to the solver) on "
                  f"{args.tests} sources never seen in training.")
    heat.heat.mode = "auto"
    heat.heat.reset_stats()
    tests = heat.random_sources(args.tests, seed=args.seed + 1_000_003)
    exact = np.zeros((args.tests, N, N))
    approx = np.zeros((args.tests, N, N))
    warm = heat.random_sources(1, seed=args.seed + 7)[0]  # first calls pay one-off costs: not timed
    heat.solve(warm, np.zeros((N, N)))
    heat.heat(warm, np.zeros((N, N)))
    heat.heat.reset_stats()
    t_orig, t_surr, t_direct = [], [], []
    # Two separate passes (solver, then surrogate), as a program would run one or the other;
    # interleaving them would also measure the solver evicting the model's weights from the CPU cache.
    with progress() as bar:
        task = bar.add_task("reference solves", total=args.tests)
        for i, f in enumerate(tests):
            t0 = time.perf_counter()
            heat.solve(f, exact[i])
            t_orig.append(time.perf_counter() - t0)
            bar.advance(task)
        task = bar.add_task("reference solves, sparse LU", total=args.tests)
        direct = np.zeros((args.tests, N, N))
        heat.solve_direct(warm, np.zeros((N, N)))  # factorises once (not timed: reused by every later call)
        for i, f in enumerate(tests):
            t0 = time.perf_counter()
            heat.solve_direct(f, direct[i])
            t_direct.append(time.perf_counter() - t0)
            bar.advance(task)
        task = bar.add_task("surrogate calls (auto)", total=args.tests)
        by_model = np.zeros(args.tests, bool)
        for i, f in enumerate(tests):
            before = heat.heat.stats.model_calls
            t0 = time.perf_counter()
            heat.heat(f, approx[i])
            t_surr.append(time.perf_counter() - t0)
            by_model[i] = heat.heat.stats.model_calls > before
            bar.advance(task)
    stats = heat.heat.stats
    from phasm.train.metrics import per_call_relative_error

    rel = per_call_relative_error(exact.reshape(args.tests, -1), approx.reshape(args.tests, -1))

    # 4. batched ------------------------------------------------------------
    heat.heat_batch.load(model_dir)
    heat.heat_batch.mode = "auto"
    B = min(args.batch, args.tests)
    Fb = tests[:B].copy()
    Ub = np.zeros((B, N, N))
    t0 = time.perf_counter()
    heat.solve(Fb, Ub)  # the vectorised solver on the whole batch: the fair batched baseline
    t_orig_batch = (time.perf_counter() - t0) / B
    Ud = np.zeros((B, N, N))
    heat.solve_direct(Fb, Ud)  # warm-up
    t0 = time.perf_counter()
    for _ in range(5):
        heat.solve_direct(Fb, Ud)  # one multi-right-hand-side solve with the reused factors
    t_direct_batch = (time.perf_counter() - t0) / (5 * B)
    t0 = time.perf_counter()
    for f in Fb:
        heat.solve_direct(f, Ud[0])  # or one call per source: the faster of the two is the baseline
    t_direct_batch = min(t_direct_batch, (time.perf_counter() - t0) / B)
    Ub2 = np.zeros((B, N, N))
    heat.heat_batch(Fb, Ub2)  # warm-up
    reps = 5
    t0 = time.perf_counter()
    for _ in range(reps):
        Ub2[:] = 0.0
        heat.heat_batch(Fb, Ub2)
    t_surr_batch = (time.perf_counter() - t0) / (reps * B)
    rel_b = per_call_relative_error(Ub.reshape(B, -1), Ub2.reshape(B, -1))

    # Means, so fallbacks (calls the gate sends to the solver) count at their full cost; medians in the JSON.
    mean_orig, mean_surr = float(np.mean(t_orig)), float(np.mean(t_surr))
    med_orig, med_surr = float(np.median(t_orig)), float(np.median(t_surr))
    mean_direct, med_direct = float(np.mean(t_direct)), float(np.median(t_direct))
    direct_vs_sor = per_call_relative_error(exact.reshape(args.tests, -1), direct.reshape(args.tests, -1))
    summary = {
        "machine": f"{platform.machine()} {os.cpu_count()}-core CPU, no GPU" if not _cuda() else f"{platform.machine()} CPU + CUDA GPU",
        "grid": N,
        "solver": {"method": "red-black SOR", "omega": heat.OMEGA, "tol": heat.TOL},
        "direct_solver": {"method": "sparse LU (scipy.sparse.linalg.splu), factorised once and reused",
                          "rel_diff_vs_sor_max": float(direct_vs_sor.max())},
        "captures": args.captures,
        "capture_seconds": t_capture,
        "training": {"epochs": result.history.epochs, "best_epoch": result.history.best_epoch,
                     "seconds": result.seconds, "device": result.history.device, "hidden": list(hidden),
                     "validation": result.metrics.get("u", {})},
        "unseen": {"count": args.tests, "rel_mean": float(rel.mean()), "rel_p50": float(np.quantile(rel, 0.5)),
                   "rel_p99": float(np.quantile(rel, 0.99)), "rel_max": float(rel.max()),
                   "fallbacks": int(stats.fallbacks), "model_calls": int(stats.model_calls),
                   "model_answered_rel_p99": float(np.quantile(rel[by_model], 0.99)) if by_model.any() else None,
                   "model_answered_rel_max": float(rel[by_model].max()) if by_model.any() else None,
                   "batched_rel_p99": float(np.quantile(rel_b, 0.99))},
        "time_per_call_s": {"original_batch1": mean_orig, "surrogate_batch1": mean_surr,
                            "original_batch1_median": med_orig, "surrogate_batch1_median": med_surr,
                            "original_batched_per_row": t_orig_batch, "surrogate_batched_per_row": t_surr_batch,
                            "direct_batch1": mean_direct, "direct_batch1_median": med_direct,
                            "direct_batched_per_row": t_direct_batch, "batch": B},
        "speedup": {"batch1": mean_orig / mean_surr, "batch1_median": med_orig / med_surr,
                    "batched": t_orig_batch / t_surr_batch, "batched_vs_single_solve": mean_orig / t_surr_batch,
                    "vs_direct_batch1": mean_direct / mean_surr, "vs_direct_batch1_median": med_direct / med_surr,
                    "vs_direct_batched": t_direct_batch / t_surr_batch},
        "model": str(model_dir),
        "trust_gate": gate_info,
    }

    table = Table(title=f"heat equation {N}x{N}: surrogate vs solver on {args.tests} unseen sources")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("relative error, mean", f"{summary['unseen']['rel_mean']:.3%}"),
        ("relative error, 99th percentile", f"{summary['unseen']['rel_p99']:.3%}"),
        ("relative error, max", f"{summary['unseen']['rel_max']:.3%}"),
        ("calls answered by the model / fell back", f"{stats.model_calls} / {stats.fallbacks}"),
        ("relative error p99 / max, model-answered calls only",
         f"{np.quantile(rel[by_model], 0.99):.3%} / {rel[by_model].max():.3%}"
         if by_model.any() else "-"),
        ("time per call, solver (batch 1, mean)", f"{mean_orig * 1e3:.2f} ms"),
        ("time per call, surrogate in auto mode (batch 1, mean)", f"{mean_surr * 1e6:.0f} us"),
        ("speedup, batch 1 (mean; median)", f"{mean_orig / mean_surr:.0f}x; {med_orig / med_surr:.0f}x"),
        (f"time per row, solver (vectorised, batch {B})", f"{t_orig_batch * 1e3:.2f} ms"),
        (f"time per row, surrogate (batch {B})", f"{t_surr_batch * 1e6:.1f} us"),
        (f"speedup, batch {B}", f"{summary['speedup']['batched']:.0f}x"),
        ("time per call, sparse LU solver, factorised once (batch 1, mean; median)",
         f"{mean_direct * 1e6:.0f} us; {med_direct * 1e6:.0f} us"),
        ("speedup vs sparse LU, batch 1 (mean; median)",
         f"{mean_direct / mean_surr:.2f}x; {med_direct / med_surr:.2f}x"),
        (f"time per row, sparse LU solver (batch {B})", f"{t_direct_batch * 1e6:.1f} us"),
        (f"speedup vs sparse LU, batch {B}", f"{t_direct_batch / t_surr_batch:.2f}x"),
    ]
    for r in rows:
        table.add_row(*r)
    console.print()
    console.print(table)
    console.print(f"machine: {summary['machine']}")

    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    md = [f"# phasm heat-equation demo ({N}x{N} grid)", "",
          f"Solver: red-black SOR (omega {heat.OMEGA}, tolerance {heat.TOL:g}); also a sparse LU factorisation "
          f"(scipy splu, computed once, reused; max relative difference to SOR {direct_vs_sor.max():.1e}). "
          f"{args.captures} captured solves "
          f"({t_capture:.0f} s); MLP {list(hidden)} + linear skip trained {result.history.epochs} epochs "
          f"in {result.seconds:.0f} s on {result.history.device}.", "",
          "| measure | value |", "|---|---:|", *[f"| {a} | {b} |" for a, b in rows], "",
          f"Machine: {summary['machine']}. Model: `{model_dir}`.", ""]
    (out / "summary.md").write_text("\n".join(md))
    page = heat.heat.report(out / "report.html")  # spec, data, training, accuracy, gate, and this run's counters
    console.print(f"\nWrote {out / 'summary.json'}, {out / 'summary.md'}, {page} and the model folder {model_dir}.")
    heat.heat.close()
    return summary


def _cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


if __name__ == "__main__":
    main()
