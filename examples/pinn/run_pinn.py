"""Physics-informed training on a parametric steady heat problem: captures only, physics only, both.

Usage::

    python examples/pinn/run_pinn.py --out demo-output/pinn       # what `make demo-pinn` runs (~3.5 min)
    python examples/pinn/run_pinn.py --out /tmp/p --seconds 5 --solves 16 --few 4   # a quick run

The function (``poisson.temperature``) answers the temperature at points of a plate for
five parameters (heat-source position and strength, two edge temperatures) by a
finite-difference solve.  Three surrogates of it get the same training time:

(a) captures only: ``--solves`` captured solves, each recorded at a ``--points`` x ``--points`` grid of points;
(b) physics only: no captured solve, the heat equation's residual on collocation points;
(c) few captures + physics: the first ``--few`` of those solves plus the residual.

Each is compared with the finite-difference solution on ``--tests`` unseen parameter sets
(every mesh node).  ``--out`` receives ``summary.json`` and ``summary.md``.
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
    p.add_argument("--out", type=Path, default=Path("demo-output/pinn"), help="output folder (default: demo-output/pinn)")
    p.add_argument("--solves", type=int, default=32, help="captured solves for (a), captures only (default 32)")
    p.add_argument("--few", type=int, default=8, help="captured solves for (c), few captures + physics (default 8)")
    p.add_argument("--points", type=int, default=21, help="points per side of the grid each solve is recorded at (default 21)")
    p.add_argument("--seconds", type=float, default=50.0, help="training time of each model, seconds (default 50)")
    p.add_argument("--hidden", type=str, default="64,64,64", help="hidden layer widths (default 64,64,64)")
    p.add_argument("--collocation", type=int, default=512, help="collocation points per step (default 512)")
    p.add_argument("--physics-weight", type=float, default=1.0, help="weight of the residual loss (default 1)")
    p.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate (default 1e-2)")
    p.add_argument("--batch-size", type=int, default=256, help="mini-batch of captured rows (default 256)")
    p.add_argument("--tests", type=int, default=40, help="unseen parameter sets to evaluate on (default 40)")
    p.add_argument("--device", type=str, default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="print only the table")
    return p.parse_args(argv)


def capture(poisson, params: np.ndarray, points: int) -> float:
    """Run the real solver on each parameter set at a points x points grid, in capture mode; returns seconds."""
    grid = np.linspace(0.0, 1.0, points)
    X, Y = (a.ravel() for a in np.meshgrid(grid, grid, indexing="ij"))
    poisson.temperature.mode = "capture"
    t0 = time.perf_counter()
    for p in params:
        poisson.temperature(X, Y, *(np.full(X.shape, v) for v in p))
    poisson.temperature.flush()
    poisson.temperature.mode = "original"
    return time.perf_counter() - t0


def test_set(poisson, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Model input rows (every mesh node of every parameter set) and the finite-difference answers."""
    n = poisson.GRID
    grid = np.linspace(0.0, 1.0, n)
    X, Y = (a.ravel() for a in np.meshgrid(grid, grid, indexing="ij"))
    rows, exact = [], []
    for p in params:
        rows.append(np.column_stack([X, Y, *(np.full(X.shape, v) for v in p)]))
        exact.append(poisson.solve_field(*p).ravel())
    return np.concatenate(rows), np.concatenate(exact)


def rel_l2(pred: np.ndarray, exact: np.ndarray) -> float:
    return float(np.linalg.norm(pred - exact) / np.linalg.norm(exact))


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if not 1 <= args.few <= args.solves:
        raise SystemExit(f"--few must be in 1..--solves ({args.solves}), got {args.few}")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    store = out / "captures" / "temperature.h5"
    if store.exists():
        store.unlink()
    shutil.rmtree(Path(str(store) + ".shards"), ignore_errors=True)
    os.environ["PINN_STORE"] = str(store)  # poisson.py reads it when imported
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import poisson  # noqa: E402
    import torch

    from phasm.train import fit_model

    torch.set_num_threads(args.threads)
    say = (lambda *a: None) if args.quiet else print
    hidden = tuple(int(h) for h in args.hidden.split(",") if h)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    common = dict(hidden=hidden, activation="tanh", lr=args.lr, batch_size=args.batch_size, epochs=1_000_000,
                  max_seconds=args.seconds, seed=args.seed, threads=args.threads, device=device, patience=None)
    physics = dict(physics=poisson.heat_residual, physics_weight=args.physics_weight, collocation=args.collocation,
                   domain=poisson.DOMAIN)

    say(f"Plate heat problem, {poisson.GRID}x{poisson.GRID} finite-difference mesh; each model trains "
        f"{args.seconds:g} s on {device}.")
    params = poisson.random_parameters(args.solves, seed=args.seed + 1)
    t_capture = capture(poisson, params, args.points)
    rows_per_solve = args.points**2
    spec = poisson.temperature.spec
    X_all, Y_all = poisson.temperature.capture_store().matrices()
    X_few, Y_few = X_all[: args.few * rows_per_solve], Y_all[: args.few * rows_per_solve]
    say(f"captured {args.solves} solves x {rows_per_solve} points in {t_capture:.2f} s")
    X_test, T_test = test_set(poisson, poisson.random_parameters(args.tests, seed=args.seed + 1_000_003))

    runs = {}
    # (a) captures only, through the surrogate's own train()
    result_a = poisson.temperature.train(**common)
    runs["captures_only"] = (poisson.temperature.model, result_a, args.solves)
    # (a') the few captures alone, the baseline (c) improves on
    runs["few_captures_only"] = (*fit_model((X_few, Y_few), spec, **common), args.few)
    # (b) physics only: no captured row
    runs["physics_only"] = (*fit_model(None, spec, output_range={"T": (0.0, 1.0)}, **physics, **common), 0)
    # (c) few captures + physics
    runs["few_plus_physics"] = (*fit_model((X_few, Y_few), spec, **physics, **common), args.few)

    summary_runs = {}
    for name, (art, result, solves) in runs.items():
        t0 = time.perf_counter()
        pred = art.predict(X_test.astype(np.float32))[:, 0]
        t_pred = time.perf_counter() - t0
        hist = result.history
        steps = hist.epochs * max(1, -(-result.n_train // args.batch_size))  # an epoch: one pass over the rows, or one step
        summary_runs[name] = {
            "rel_l2": rel_l2(pred, T_test), "max_abs": float(np.abs(pred - T_test).max()),
            "captured_solves": solves, "captured_rows": solves * rows_per_solve,
            "train_seconds": hist.seconds, "epochs": hist.epochs, "steps": steps, "device": hist.device,
            "seconds_per_step": hist.seconds / steps,
            "final_physics_loss": (hist.notes.get("physics_loss") or [None])[-1],
            "final_physics_terms": hist.notes.get("physics_terms"),
            "predict_seconds_per_point": t_pred / len(X_test),
        }
        say(f"  {name:<18} rel L2 {summary_runs[name]['rel_l2']:.3%}  ({steps} steps in {hist.seconds:.1f} s)")

    # Time of the original vs the surrogate: one field (every mesh node of one parameter set) and one point.
    poisson.temperature.model = runs["few_plus_physics"][0]
    n = poisson.GRID
    one = X_test[: n * n]
    args_field = [one[:, k].astype(np.float64) for k in range(one.shape[1])]
    timings = {}
    for label, call_args in (("field", args_field), ("point", [a[:1] for a in args_field])):
        for mode in ("original", "model"):
            poisson.temperature.mode = mode
            poisson.temperature(*call_args)
            reps = 50
            t0 = time.perf_counter()
            for _ in range(reps):
                poisson.temperature(*call_args)
            timings[f"{mode}_{label}"] = (time.perf_counter() - t0) / reps
    poisson.temperature.mode = "original"

    machine = f"{platform.machine()} {os.cpu_count()}-core CPU" + (f" + {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU")
    r = summary_runs
    summary = {
        "rel_l2_captures_only": r["captures_only"]["rel_l2"],
        "rel_l2_physics_only": r["physics_only"]["rel_l2"],
        "rel_l2_few_plus_physics": r["few_plus_physics"]["rel_l2"],
        "rel_l2_few_captures_only": r["few_captures_only"]["rel_l2"],
        "captures_used": {"captures_only": args.solves, "physics_only": 0, "few_plus_physics": args.few},
        "target_met": bool(r["few_plus_physics"]["rel_l2"] <= r["captures_only"]["rel_l2"] and 4 * args.few <= args.solves),
        "runs": summary_runs,
        "problem": {"grid": n, "sigma": poisson.SIGMA, "domain": poisson.DOMAIN, "points_per_solve": rows_per_solve,
                    "test_parameter_sets": args.tests},
        "training": {"seconds_each": args.seconds, "hidden": list(hidden), "activation": "tanh", "lr": args.lr,
                     "collocation": args.collocation, "physics_weight": args.physics_weight, "device": device,
                     "threads": args.threads},
        "time_per_call_s": timings,
        "capture_seconds": t_capture,
        "machine": machine,
        "gpu_measured": bool(torch.cuda.is_available()),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    labels = {"captures_only": "(a) captures only", "few_captures_only": "(a') few captures only",
              "physics_only": "(b) physics only", "few_plus_physics": "(c) few captures + physics"}
    table = ["| model | captured solves | rel. L2 error vs FD | max abs error | training steps | training time | time per step |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in ("captures_only", "few_captures_only", "physics_only", "few_plus_physics"):
        s = r[name]
        table.append(f"| {labels[name]} | {s['captured_solves']} | {s['rel_l2']:.2%} | {s['max_abs']:.3f} | {s['steps']} | "
                     f"{s['train_seconds']:.0f} s | {s['seconds_per_step'] * 1e3:.1f} ms |")
    md = [f"# phasm physics-informed training demo (plate heat problem, {n}x{n} FD mesh)", "",
          f"Each model: MLP {list(hidden)} (tanh), Adam lr {args.lr:g} with a cosine schedule over {args.seconds:g} s of "
          f"training on {device}; physics: {args.collocation} collocation points per step, weight {args.physics_weight:g}. "
          f"Each captured solve is recorded at {rows_per_solve} points. Errors over every mesh node of "
          f"{args.tests} unseen parameter sets.", "", *table, "",
          f"Target: (c) reaches the error of (a) with at most a quarter of the captures "
          f"({args.few} vs {args.solves} solves): **{'met' if summary['target_met'] else 'not met'}**.", "",
          "| time per call | finite differences (splu, factorised once) | surrogate (c), model mode |", "|---|---:|---:|",
          f"| one field ({n * n} points, one solve) | {timings['original_field'] * 1e3:.2f} ms | {timings['model_field'] * 1e3:.2f} ms |",
          f"| one point | {timings['original_point'] * 1e6:.0f} us | {timings['model_point'] * 1e6:.0f} us |", "",
          f"Machine: {machine}" + ("" if torch.cuda.is_available() else "; no GPU was measured") + ".", ""]
    (out / "summary.md").write_text("\n".join(md))
    if not args.quiet:
        print("\n".join(md))
    else:
        print("\n".join(table))
    poisson.temperature.close()
    return summary


if __name__ == "__main__":
    main()
