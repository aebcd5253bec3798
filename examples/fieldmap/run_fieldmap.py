"""The magnetic field map demo: Biot-Savart map, capture, train, certify, and an honest cost comparison.

Usage::

    python examples/fieldmap/run_fieldmap.py --out demo-output            # what `make demo-fieldmap` runs
    python examples/fieldmap/run_fieldmap.py --out /tmp/f --spacing 0.1 --captures 4000 --epochs 20   # quick

It leaves in ``--out/fieldmap``: the capture store, the model folder
(``model/``), the cost models (``cost-batch1.json``, ``cost-batched.json``)
and ``summary.json`` + ``summary.md``.  The field map itself is cached in
``--cache`` (default ``--out/.cache``) and reused by the tracking demo.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
SPACINGS = (0.08, 0.04, 0.02, 0.01, 0.005)  # metres: the map-resolution table
BATCHES = (1, 16, 256, 4096, 65536)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default: demo-output)")
    p.add_argument("--cache", type=Path, default=None, help="field-map cache folder (default: OUT/.cache)")
    p.add_argument("--spacing", type=float, default=0.02, help="mesh step of the map in metres (default 0.02)")
    p.add_argument("--captures", type=int, default=48000, help="field look-ups to capture for training (default 48000)")
    p.add_argument("--tests", type=int, default=20000, help="unseen points in the tracking volume (default 20000)")
    p.add_argument("--hidden", type=str, default="64,64,64", help="hidden layer widths (default 64,64,64)")
    p.add_argument("--epochs", type=int, default=180, help="training epochs (default 180)")
    p.add_argument("--batch-size", type=int, default=1024, help="training mini-batch (default 1024)")
    p.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate (default 1e-2)")
    p.add_argument("--tolerance", type=float, default=0.005,
                   help="relative error |dB|/|B| the gate certifies (default 0.005; 0: finite-only gate)")
    p.add_argument("--max-miss-rate", type=float, default=0.01, help="allowed share of trusted calls beyond it (default 0.01)")
    p.add_argument("--resolution-points", type=int, default=2000,
                   help="points for the map error vs mesh step table (default 2000)")
    p.add_argument("--budget", type=float, default=1.0, help="seconds per timing loop of the cost model (default 1)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def training_points(n: int, seed: int) -> np.ndarray:
    """Where the surrogate learns: the tracking cylinder plus 5 cm on every side (so its edges are interior)."""
    import magnet

    rng = np.random.default_rng([seed, 11])
    r = (magnet.TRACKING_RADIUS + 0.05) * np.sqrt(rng.random(n))
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    z = rng.uniform(magnet.TRACKING_Z[0] - 0.05, magnet.TRACKING_Z[1] + 0.05, n)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], 1)


def per_row(fn: Callable[[], Any], rows: int, budget: float, min_reps: int = 3) -> float:
    """Median seconds per row of ``fn`` (which handles ``rows`` rows), over repeats within ``budget``."""
    fn()
    times = []
    t_end = time.perf_counter() + budget
    while len(times) < min_reps or (time.perf_counter() < t_end and len(times) < 2000):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) / rows


def equal_accuracy_spacing(table: list[dict[str, float]], target: float) -> float:
    """Mesh step at which the map's p99 error equals ``target`` (log-log interpolation; error ~ h**2)."""
    h = np.log([r["spacing_m"] for r in table])
    e = np.log([r["rel_err_p99"] for r in table])
    order = np.argsort(e)
    return float(np.exp(np.interp(np.log(target), e[order], h[order], left=None, right=None)))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    out: Path = args.out / "fieldmap"
    out.mkdir(parents=True, exist_ok=True)
    cache = args.cache or args.out / ".cache"
    store = out / "captures" / "field.h5"
    if store.exists():
        store.unlink()
    shutil.rmtree(Path(str(store) + ".shards"), ignore_errors=True)
    os.environ.update(FIELDMAP_SPACING=str(args.spacing), FIELDMAP_CACHE=str(cache), FIELDMAP_STORE=str(store))
    if args.tolerance:
        os.environ.update(FIELDMAP_TOL=str(args.tolerance), FIELDMAP_MISS=str(args.max_miss_rate))
    else:
        os.environ.pop("FIELDMAP_TOL", None)
    sys.path.insert(0, str(HERE))
    for name in ("field",):
        sys.modules.pop(name, None)  # field.py reads the environment when imported

    import torch
    from rich.console import Console
    from rich.table import Table

    import magnet
    from phasm.profile.costmodel import machine_name, measure_cost

    torch.set_num_threads(args.threads)
    console = Console(quiet=args.quiet)
    console.rule("[bold]phasm magnetic field map demo")

    # 1. the map -----------------------------------------------------------------------------------
    console.print("[bold]1. The original[/]: a solenoid coil set (4 coils, one misaligned, and a return coil) computed "
                  f"with the Biot-Savart law, tabulated on a {args.spacing * 100:g} cm mesh, trilinear look-up.")
    t0 = time.perf_counter()
    import field as F  # builds or loads the map

    t_map = time.perf_counter() - t0
    fm = F.MAP
    console.print(f"   map {fm.shape[0]}x{fm.shape[1]}x{fm.shape[2]} nodes x 3 components, float32: "
                  f"{fm.nbytes / 1e6:.1f} MB (built or loaded in {t_map:.1f} s)")
    tests = magnet.tracking_volume_points(args.tests, seed=args.seed + 1000)
    exact = magnet.field_at(tests)
    b_map = fm.lookup(tests)
    map_err = np.linalg.norm(b_map - exact, axis=1) / np.linalg.norm(exact, axis=1)
    res_pts = tests[: args.resolution_points]
    resolution = []
    for h in SPACINGS:
        e = magnet.interpolation_error(h, res_pts, exact[: len(res_pts)])
        nodes = math.prod(magnet.FieldMap.mesh_shape(h))
        resolution.append({"spacing_m": h, "rel_err_p50": float(np.quantile(e, 0.5)),
                           "rel_err_p99": float(np.quantile(e, 0.99)), "map_bytes_float32": int(nodes * 12)})
    console.print(f"   the map against Biot-Savart at {args.tests} points in the tracking volume: "
                  f"p99 {np.quantile(map_err, 0.99):.2e} of |B|")

    # 2. capture ------------------------------------------------------------------------------------
    pts = training_points(args.captures, args.seed)
    console.print(f"\n[bold]2. Capture[/]: {args.captures} look-ups in the tracking volume (+5 cm), in calls of 4096 "
                  "points, recorded by phasm.")
    F.field_batch.mode = "capture"
    t0 = time.perf_counter()
    for s in range(0, len(pts), 4096):
        F.field_batch(*pts[s : s + 4096].T)
    F.field_batch.flush()
    t_capture = time.perf_counter() - t0

    # 3. train + certify -----------------------------------------------------------------------------
    hidden = tuple(int(h) for h in args.hidden.split(",") if h)
    console.print(f"\n[bold]3. Train[/]: MLP {hidden} (torch, phasm's default backend), {args.epochs} epochs"
                  + (f"; a quarter of the captures certify the gate for |dB| <= {args.tolerance:.1%} of |B|"
                     if args.tolerance else ""))
    result = F.field_batch.train(hidden=hidden, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                 patience=None, threads=args.threads, seed=args.seed, verbose=not args.quiet)
    console.print("   " + result.summary().replace("\n", "\n   "))
    report = F.field_batch.calibration
    if report is not None:
        console.print(f"   {report}")
    model_dir = F.field_batch.save(out / "model")
    F.field.load(model_dir)
    weights = {p.name: p.stat().st_size for p in model_dir.iterdir() if p.name != "phasm.json"}
    model_bytes = int(sum(t.numel() * t.element_size() for t in F.field_batch.model.backend.module_.state_dict().values()))
    gate_json = json.loads((model_dir / "phasm.json").read_text()).get("gate", {})
    gate_bytes = len(json.dumps(gate_json))

    # 4. accuracy on unseen points ---------------------------------------------------------------------
    F.field_batch.mode = "model"
    b_sur = F.field_batch(*tests.T)
    rel = np.linalg.norm(b_sur - b_map, axis=1) / np.linalg.norm(b_map, axis=1)
    rel_exact = np.linalg.norm(b_sur - exact, axis=1) / np.linalg.norm(exact, axis=1)
    F.field_batch.mode = "auto"
    F.field_batch.reset_stats()
    b_auto = F.field_batch(*tests.T)
    auto_stats = F.field_batch.stats
    rel_auto = np.linalg.norm(b_auto - b_map, axis=1) / np.linalg.norm(b_map, axis=1)
    # beyond the captures: outside their range, and inside it but off the captured cylinder (near the coils)
    outside = np.array([[0.0, 0.0, 3.0], [1.5, 0.0, 0.5], [0.0, 0.0, -1.0], [0.8, 0.8, 0.5], [-0.8, 0.75, 1.2]])
    F.field_batch.reset_stats()
    F.field_batch(*outside.T)
    outside_fallbacks = F.field_batch.stats.fallbacks
    p99 = float(np.quantile(rel, 0.99))
    h_eq = equal_accuracy_spacing(resolution, p99)
    bytes_eq = int(math.prod(magnet.FieldMap.mesh_shape(h_eq)) * 12)

    # 5. cost: phasm's cost model, batch 1 and batched; then time per row against batch size ---------------
    console.print("\n[bold]4. Cost[/]: phasm's cost model (phasm.profile.measure_cost, what `phasm bench` runs), "
                  "then time per row against batch size.")
    cm1 = measure_cost(F.field, store=store, n_calls=2000, budget_s=args.budget, widths=None)
    cmb = measure_cost(F.field_batch, store=store, n_calls=8192, budget_s=args.budget, widths=None)
    cm1.save(out / "cost-batch1.json")
    cmb.save(out / "cost-batched.json")
    sweep = []
    for B in BATCHES:
        P = tests[np.arange(B) % len(tests)]
        x, y, z = (np.ascontiguousarray(c) for c in P.T)
        row: dict[str, Any] = {"batch": B}
        if B == 1:
            xf, yf, zf = float(x[0]), float(y[0]), float(z[0])
            row["original_us"] = per_row(lambda: F.field.__wrapped__(xf, yf, zf), 1, args.budget / 4) * 1e6
            for mode in ("model", "auto"):
                F.field.mode = mode
                row[f"surrogate_{mode}_us"] = per_row(lambda: F.field(xf, yf, zf), 1, args.budget / 4) * 1e6
        else:
            row["original_us"] = per_row(lambda: F.field_batch.__wrapped__(x, y, z), B, args.budget / 4) * 1e6
            for mode in ("model", "auto"):
                F.field_batch.mode = mode
                row[f"surrogate_{mode}_us"] = per_row(lambda: F.field_batch(x, y, z), B, args.budget / 4) * 1e6
        row["speedup_model"] = row["original_us"] / row["surrogate_model_us"]
        row["speedup_auto"] = row["original_us"] / row["surrogate_auto_us"]
        sweep.append(row)
    best = max(sweep, key=lambda r: r["speedup_auto"])

    summary: dict[str, Any] = {
        "machine": machine_name(),
        "field_rel_err_p99": p99,
        "map_bytes": fm.nbytes,
        "model_bytes": model_bytes,
        "speedup_batch1": cm1.s_eff,
        "speedup_batched": cmb.s_eff,
        "map": {"spacing_m": args.spacing, "nodes": list(fm.shape), "seconds_to_build_or_load": t_map,
                "rel_err_vs_biot_savart_p50": float(np.quantile(map_err, 0.5)),
                "rel_err_vs_biot_savart_p99": float(np.quantile(map_err, 0.99)),
                "resolution": resolution},
        "surrogate": {"hidden": list(hidden), "captures": args.captures, "capture_seconds": t_capture,
                      "training_seconds": result.seconds, "epochs": result.history.epochs,
                      "weights_file_bytes": weights, "gate_record_bytes": gate_bytes,
                      "rel_err_vs_map_p50": float(np.quantile(rel, 0.5)), "rel_err_vs_map_p99": p99,
                      "rel_err_vs_map_max": float(rel.max()),
                      "rel_err_vs_biot_savart_p99": float(np.quantile(rel_exact, 0.99)),
                      "auto_mode": {"fallbacks": int(auto_stats.fallbacks), "rows": int(auto_stats.rows),
                                    "rel_err_p99": float(np.quantile(rel_auto, 0.99)),
                                    "outside_points_sent_to_the_map": f"{outside_fallbacks} of {len(outside)}"},
                      "gate": report.to_json() if report is not None else None,
                      "map_spacing_at_equal_accuracy_m": h_eq, "map_bytes_at_equal_accuracy": bytes_eq},
        "cost_model": {"batch1": cm1.to_json(), "batched": cmb.to_json()},
        "time_per_row_vs_batch": sweep,
        "best_batch_auto": {"batch": best["batch"], "speedup": best["speedup_auto"]},
        "tests": args.tests,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    write_markdown(out / "summary.md", summary)

    table = Table(title="field map: original (trilinear map) vs surrogate")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for a, b in markdown_rows(summary):
        table.add_row(a, b)
    console.print(table)
    console.print(f"machine: {summary['machine']}\nWrote {out / 'summary.json'} and {out / 'summary.md'}.")
    F.field_batch.close()
    return summary


def markdown_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    sur, cm1, cmb = s["surrogate"], s["cost_model"]["batch1"], s["cost_model"]["batched"]
    rows = [
        ("field error vs the map, p50 / p99 / max (of abs B)",
         f"{sur['rel_err_vs_map_p50']:.3%} / {s['field_rel_err_p99']:.3%} / {sur['rel_err_vs_map_max']:.3%}"),
        ("the map's own error vs Biot-Savart, p99", f"{s['map']['rel_err_vs_biot_savart_p99']:.2e}"),
        ("auto mode on the unseen points: fell back", f"{sur['auto_mode']['fallbacks']} of {sur['auto_mode']['rows']}"),
        ("points outside the captured volume sent to the map", sur["auto_mode"]["outside_points_sent_to_the_map"]),
        ("memory: map (this mesh) / model weights", f"{s['map_bytes'] / 1e6:.1f} MB / {s['model_bytes'] / 1e3:.1f} kB"),
        ("map mesh step with the surrogate's p99 error, and its bytes",
         f"{sur['map_spacing_at_equal_accuracy_m'] * 100:.1f} cm, {sur['map_bytes_at_equal_accuracy'] / 1e6:.2f} MB"),
        ("cost model, batch 1: original / model call / gate per call",
         f"{cm1['t_orig_s'] * 1e6:.1f} us / {cm1['t_model_s'] * 1e6:.1f} us / {cm1['t_gate_s'] * 1e6:.1f} us"),
        ("cost model, batch 1: fallback share, s_eff (speedup)", f"{cm1['fallback_rate']:.1%}, {s['speedup_batch1']:.2f}x"),
        (f"cost model, {cmb['rows_per_call']} rows per call: original / model / gate per row",
         f"{cmb['t_orig_s'] / cmb['rows_per_call'] * 1e6:.2f} / {cmb['t_model_s'] / cmb['rows_per_call'] * 1e6:.2f} / "
         f"{cmb['t_gate_s'] / cmb['rows_per_call'] * 1e6:.2f} us"),
        (f"cost model, {cmb['rows_per_call']} rows per call: s_eff (speedup)", f"{s['speedup_batched']:.2f}x"),
    ]
    for r in s["time_per_row_vs_batch"]:
        rows.append((f"batch {r['batch']}: us per row, original / model / auto (speedup model, auto)",
                     f"{r['original_us']:.3f} / {r['surrogate_model_us']:.3f} / {r['surrogate_auto_us']:.3f} "
                     f"({r['speedup_model']:.2f}x, {r['speedup_auto']:.2f}x)"))
    return rows


def write_markdown(path: Path, s: dict[str, Any]) -> None:
    res = s["map"]["resolution"]
    md = [
        "# phasm magnetic field map demo", "",
        f"Original: Biot-Savart field of a solenoid coil set tabulated on a {s['map']['spacing_m'] * 100:g} cm mesh "
        f"({' x '.join(map(str, s['map']['nodes']))} nodes), trilinear look-up. Surrogate: MLP {s['surrogate']['hidden']} "
        f"trained on {s['surrogate']['captures']} captured look-ups ({s['surrogate']['training_seconds']:.0f} s, "
        f"{s['surrogate']['epochs']} epochs). Accuracy on {s['tests']} unseen points of the tracking volume.", "",
        "| measure | value |", "|---|---:|", *[f"| {a} | {b} |" for a, b in markdown_rows(s)], "",
        "Map error against the Biot-Savart field vs mesh step (8 nodes around each point computed exactly):", "",
        "| mesh step | error p50 | error p99 | map bytes (float32) |", "|---:|---:|---:|---:|",
        *[f"| {r['spacing_m'] * 100:g} cm | {r['rel_err_p50']:.2e} | {r['rel_err_p99']:.2e} | "
          f"{r['map_bytes_float32'] / 1e6:.2f} MB |" for r in res], "",
        f"Machine: {s['machine']}.", "",
    ]
    path.write_text("\n".join(md))


if __name__ == "__main__":
    main()
