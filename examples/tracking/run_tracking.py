"""The tracking demo: propagation through the field map replaced by a network, and an LSTM vs DeepSets over hits.

Usage::

    python examples/tracking/run_tracking.py --out demo-output      # what `make demo-tracking` runs
    python examples/tracking/run_tracking.py --out /tmp/t --spacing 0.1 --prop-captures 3000 --events 600 ...  # quick

Part 1, propagation: tracks from the target plane to the detector plane
through the field map (adaptive Runge-Kutta-Nystrom); a physics-structured
network (uniform-field helix + MLP correction) trained on captured
propagations, exported with ``torch.export``, served by ``fn.load_exported``
behind a certified gate (position within 100 um at most 5% of trusted calls).

Part 2, a sequence model over hits: the track fit in the field
(Gauss-Newton on the Runge-Kutta-Nystrom propagation) is captured on a
canned data set; phasm's DeepSets backend is trained with ``fn.train`` and an
LSTM is trained here, exported and served with ``fn.load_exported``; both
get a gate certified on the same held-out calls and are compared on the
same unseen events.

It leaves in ``--out/tracking``: the canned data set (``dataset/tracks.npz``),
the capture stores, the exported programs, the model folders and
``summary.json`` + ``summary.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
STATE = ("x0", "y0", "tx", "ty", "qop")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default: demo-output)")
    p.add_argument("--cache", type=Path, default=None, help="field-map cache folder (default: OUT/.cache, shared with demo-fieldmap)")
    p.add_argument("--spacing", type=float, default=0.02, help="field-map mesh step in metres (default 0.02)")
    p.add_argument("--prop-captures", type=int, default=30000, help="propagations captured for training (default 30000)")
    p.add_argument("--prop-tests", type=int, default=5000, help="unseen tracks to measure the propagation error on (default 5000)")
    p.add_argument("--prop-hidden", type=str, default="64,64", help="MLP widths of the propagation network (default 64,64)")
    p.add_argument("--prop-epochs", type=int, default=40, help="epochs of the propagation network (default 40)")
    p.add_argument("--batch", type=int, default=4096, help="batch size of the batched timing (default 4096)")
    p.add_argument("--pos-tolerance-um", type=float, default=100.0, help="position tolerance the propagation gate certifies (default 100)")
    p.add_argument("--events", type=int, default=4000, help="events whose track fits are captured (default 4000)")
    p.add_argument("--test-events", type=int, default=500, help="unseen events for the LSTM vs DeepSets comparison (default 500)")
    p.add_argument("--lstm-epochs", type=int, default=100, help="LSTM epochs (default 100)")
    p.add_argument("--lstm-hidden", type=int, default=64, help="LSTM width (default 64)")
    p.add_argument("--sets-epochs", type=int, default=100, help="DeepSets epochs (default 100)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def per_row(fn: Callable[[], Any], rows: int, budget: float, min_reps: int = 3) -> float:
    """Median seconds per row of ``fn`` (which handles ``rows`` rows), repeated within ``budget`` seconds."""
    fn()
    times = []
    t_end = time.perf_counter() + budget
    while len(times) < min_reps or (time.perf_counter() < t_end and len(times) < 1000):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) / rows


def state_errors(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Errors of start states ``(n, 5)`` against reference ones: position (um), slope (mrad), q/p (relative)."""
    d = pred - ref
    pos = np.hypot(d[:, 0], d[:, 1]) * 1e6
    slope = np.hypot(d[:, 2], d[:, 3]) * 1e3
    qop = np.abs(d[:, 4] / ref[:, 4])
    return {"pos_um_p50": float(np.quantile(pos, 0.5)), "pos_um_p95": float(np.quantile(pos, 0.95)),
            "slope_mrad_p50": float(np.quantile(slope, 0.5)), "slope_mrad_p95": float(np.quantile(slope, 0.95)),
            "qop_rel_p50": float(np.quantile(qop, 0.5)), "qop_rel_p95": float(np.quantile(qop, 0.95))}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    out: Path = args.out / "tracking"
    if out.exists():
        for sub in ("captures", "propagation-model", "sets-model", "lstm-model"):
            shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    cache = args.cache or args.out / ".cache"
    sys.path.insert(0, str(HERE))

    import torch
    from rich.console import Console

    import phasm
    import detector as D
    import field_fit
    import propagation as PR
    import sequence
    from phasm.bindings.ragged import encode
    from phasm.gate import ConformalGate, DomainGate, RaggedConformalGate
    from phasm.gate.calibrate import split_calibration
    from phasm.profile.costmodel import machine_name
    from phasm.store import CaptureStore
    from phasm.train.ragged import ragged_matrices
    from propagate import propagate, propagate_one

    torch.set_num_threads(args.threads)
    console = Console(quiet=args.quiet)
    console.rule("[bold]phasm tracking demo")
    t0 = time.perf_counter()
    fm = D.field_map(cache, args.spacing)
    t_map = time.perf_counter() - t0
    console.print(f"Field map: {fm.shape} nodes, {fm.nbytes / 1e6:.1f} MB ({t_map:.1f} s to build or load). "
                  f"{len(D.PLANES)} planes at z = {D.PLANES[0]}..{D.PLANES[-1]} m.")

    # ---------------------------------------------------------------------------------------------
    # Part 1: propagation to the detector plane
    # ---------------------------------------------------------------------------------------------
    console.print("\n[bold]1. Propagation[/]: adaptive Runge-Kutta-Nystrom through the map, target plane -> "
                  f"z = {D.Z_DETECTOR} m; captured, then replaced by a helix + MLP network.")
    prop_track, prop_batch = PR.make_propagators(fm, store=out / "captures" / "propagate.h5")
    train_states = D.start_states(args.prop_captures, seed=args.seed)
    prop_batch.mode = "capture"
    t0 = time.perf_counter()
    for s in range(0, len(train_states), 4096):
        prop_batch(*train_states[s : s + 4096].T)
    prop_batch.flush()
    t_prop_capture = time.perf_counter() - t0
    ins, outs = CaptureStore(out / "captures" / "propagate.h5").read()
    X = np.column_stack([ins[k] for k in ("x", "y", "tx", "ty", "qop")])
    Y = np.column_stack([outs["pos"], outs["slope"]])
    cal = split_calibration(len(X), 0.25, args.seed)
    hidden = tuple(int(h) for h in args.prop_hidden.split(",") if h)
    net, prop_record = PR.train_helix_net(X[~cal], Y[~cal], dz=D.Z_DETECTOR - D.Z0, hidden=hidden,
                                          epochs=args.prop_epochs, seed=args.seed)
    pt2 = PR.export(net, 5, out / "propagation.pt2")
    prop_batch.load_exported(pt2)
    tol = phasm.Tolerance(rel=None, per_output={"pos": (None, args.pos_tolerance_um * 1e-6), "slope": (None, 1e-3)},
                          max_miss_rate=0.05)
    # The domain check is the captured range plus a Mahalanobis distance (a few flops per row), not the kNN default:
    # a kNN search costs more per row than this network. The start states fill a box (the acceptance), so the
    # distance test keeps every held-out state (quantile 1) and turns away only states outside what was captured.
    domain = DomainGate(metric="mahalanobis", quantile=1.0)
    gate = ConformalGate(tol, confidence=0.95, score="distance", domain=domain).fit(
        X[cal], Y[cal], prop_batch.model, X_train=X[~cal], Y_train=Y[~cal])
    prop_batch.gate = gate
    prop_dir = prop_batch.save(out / "propagation-model")
    prop_track.load(prop_dir)
    console.print(f"   {len(X)} captured propagations ({t_prop_capture:.1f} s); network trained on {prop_record['n_train']} "
                  f"in {prop_record['seconds']:.0f} s (b0 = {prop_record['b0']:.3f} T); {gate.report_}")

    tests = D.start_states(args.prop_tests, seed=args.seed + 100)
    exact = propagate(tests, D.Z0, (D.Z_DETECTOR,), fm.lookup, tolerance=D.TOLERANCE)[:, 0]
    prop_batch.mode = "model"
    pos_m, slope_m = prop_batch(*tests.T)
    prop_batch.mode = "auto"
    prop_batch.reset_stats()
    pos_a, slope_a = prop_batch(*tests.T)
    prop_fallbacks = int(prop_batch.stats.fallbacks)
    err_model = np.hypot(*(pos_m - exact[:, :2]).T) * 1e6
    err_auto = np.hypot(*(pos_a - exact[:, :2]).T) * 1e6
    slope_err = np.hypot(*(slope_m - exact[:, 2:]).T) * 1e3
    momentum = 1.0 / np.abs(tests[:, 4])
    by_momentum = {f"{lo}-{hi} GeV": float(np.quantile(err_model[(momentum >= lo) & (momentum < hi)], 0.95))
                   for lo, hi in ((1, 2), (2, 5), (5, 10.001))}
    coarse = D.field_map(cache, 2 * args.spacing)  # what a map half as fine does to the same tracks
    exact_coarse = propagate(tests[:1000], D.Z0, (D.Z_DETECTOR,), coarse.lookup, tolerance=D.TOLERANCE)[:, 0]
    map_res_um = np.hypot(*(exact_coarse[:, :2] - exact[:1000, :2]).T) * 1e6
    helix_only = net.helix(torch.from_numpy(tests.astype(np.float32))).detach().numpy()
    helix_err = np.hypot(*(helix_only[:, :2] - exact[:, :2]).T) * 1e6

    # timing: batch 1 (one track per call) and batched
    B = min(args.batch, len(tests))
    xs = [tuple(map(float, s)) for s in tests[:200]]
    it = {"k": 0}

    def one_original() -> None:
        s = xs[it["k"] % len(xs)]
        it["k"] += 1
        propagate_one(*s, D.Z0, (D.Z_DETECTOR,), fm.lookup_one, tolerance=D.TOLERANCE)

    def one_surrogate() -> None:
        s = xs[it["k"] % len(xs)]
        it["k"] += 1
        prop_track(*s)

    t1_orig = per_row(one_original, 1, 1.0, min_reps=50)
    prop_track.mode = "auto"
    t1_auto = per_row(one_surrogate, 1, 1.0, min_reps=50)
    prop_track.mode = "model"
    t1_model = per_row(one_surrogate, 1, 1.0, min_reps=50)
    cols = [np.ascontiguousarray(c) for c in tests[:B].T]
    tb_orig = per_row(lambda: prop_batch.__wrapped__(*cols), B, 2.0)
    prop_batch.mode = "model"
    tb_model = per_row(lambda: prop_batch(*cols), B, 1.0)
    prop_batch.mode = "auto"
    tb_auto = per_row(lambda: prop_batch(*cols), B, 1.0)
    propagation = {
        "captures": len(X), "capture_seconds": t_prop_capture, "training": prop_record, "hidden": list(hidden),
        "gate": gate.report_.to_json(), "tolerance": tol.to_json(), "tests": len(tests),
        "pos_err_um": {"p50": float(np.quantile(err_model, 0.5)), "p95": float(np.quantile(err_model, 0.95)),
                       "max": float(err_model.max()), "p95_by_momentum": by_momentum,
                       "auto_mode_p95": float(np.quantile(err_auto, 0.95)), "auto_mode_fallbacks": prop_fallbacks},
        "slope_err_mrad": {"p50": float(np.quantile(slope_err, 0.5)), "p95": float(np.quantile(slope_err, 0.95))},
        "helix_alone_pos_err_um_p95": float(np.quantile(helix_err, 0.95)),
        "map_twice_coarser_pos_shift_um": {"p50": float(np.quantile(map_res_um, 0.5)), "p95": float(np.quantile(map_res_um, 0.95))},
        "time_per_track_s": {"original_one_track": t1_orig, "surrogate_one_track_auto": t1_auto,
                             "surrogate_one_track_model": t1_model, "original_vectorised": tb_orig,
                             "surrogate_batched_model": tb_model, "surrogate_batched_auto": tb_auto, "batch": B},
        "speedup": {"batch1": t1_orig / t1_auto, "batched": tb_orig / tb_auto, "batched_model_mode": tb_orig / tb_model,
                    "batched_vs_one_track_original": t1_orig / tb_auto},
    }
    console.print(f"   position error on {len(tests)} unseen tracks: p50 {propagation['pos_err_um']['p50']:.1f} um, "
                  f"p95 {propagation['pos_err_um']['p95']:.1f} um (helix alone: p95 {propagation['helix_alone_pos_err_um_p95']:.0f} um)")
    console.print(f"   batch 1: {t1_orig * 1e6:.0f} us -> {t1_auto * 1e6:.0f} us ({t1_orig / t1_auto:.1f}x); batch {B}: "
                  f"{tb_orig * 1e6:.2f} -> {tb_auto * 1e6:.3f} us per track ({tb_orig / tb_auto:.0f}x)")

    # ---------------------------------------------------------------------------------------------
    # Part 2: a sequence model over hits vs the set model
    # ---------------------------------------------------------------------------------------------
    console.print("\n[bold]2. Sequence model over hits[/]: the track fit in the field, captured on the canned data set; "
                  "DeepSets (fn.train) vs an LSTM (trained here, torch.export, fn.load_exported).")
    data = D.make_dataset(args.events + args.test_events, fm.lookup, seed=args.seed + 200)
    D.save_dataset(data, out / "dataset" / "tracks.npz")
    events = D.events_of(data)
    train_events, test_events = events[: args.events], events[args.events :]
    # Seed-level tolerances (what the fit's starting point or a search road needs), not the fit's own resolution:
    # 5 mm, 20 mrad, q/p within 25% or 0.05/GeV; at most 10% of trusted calls beyond them.
    seq_tol = phasm.Tolerance(rel=None, per_output={"x0": (None, 5e-3), "y0": (None, 5e-3), "tx": (None, 0.02),
                                                    "ty": (None, 0.02), "qop": (0.25, 0.05)}, max_miss_rate=0.10)
    fits_store = out / "captures" / "fits.h5"
    sets_fn = field_fit.make_fit_track(fm.lookup_one, store=fits_store, tolerance=seq_tol)
    sets_fn.mode = "capture"
    t0 = time.perf_counter()
    for e in train_events:
        sets_fn(e, D.Track())
    sets_fn.flush()
    t_fit_capture = time.perf_counter() - t0
    sets_result = sets_fn.train(phi_hidden=(64, 64), rho_hidden=(128, 128), epochs=args.sets_epochs, patience=25,
                                threads=args.threads, seed=args.seed)
    sets_dir = sets_fn.save(out / "sets-model")
    console.print(f"   {len(train_events)} fits captured ({t_fit_capture:.0f} s); DeepSets trained in {sets_result.seconds:.0f} s; "
                  f"{sets_fn.calibration}")

    Xr, Yr = ragged_matrices(sets_fn.spec, *CaptureStore(fits_store).read())
    cal_r = split_calibration(len(Yr), 0.25, args.seed)  # the rows fn.train held out for its gate
    train_rows, cal_rows = np.flatnonzero(~cal_r), np.flatnonzero(cal_r)
    max_len = int(sets_fn.spec["hits"].meta["max_len"])
    X_train = Xr.take(train_rows)
    lstm_net, lstm_record = sequence.train_lstm(encode(X_train, length=max_len), Yr[train_rows], Xr.sets["hits"].values,
                                                max_len=max_len, hidden=args.lstm_hidden, layers=1, epochs=args.lstm_epochs,
                                                batch_size=64, lr=5e-3, seed=args.seed)
    lstm_pt2 = PR.export(lstm_net, max_len * 4, out / "lstm.pt2")
    lstm_fn = field_fit.make_fit_track(fm.lookup_one)
    lstm_fn.load_exported(lstm_pt2)  # the spec is declared, so the program's width is checked against it
    lstm_gate = RaggedConformalGate(seq_tol, confidence=0.95, seed=args.seed).fit(
        Xr.take(cal_rows), Yr[cal_rows], lstm_fn.model, X_train=X_train)
    lstm_fn.gate = lstm_gate
    lstm_dir = lstm_fn.save(out / "lstm-model")
    console.print(f"   LSTM trained in {lstm_record['seconds']:.0f} s; {lstm_gate.report_}")

    # the same unseen events through the original fit, the set model and the LSTM (auto mode: gate + fallback)
    reference = np.zeros((len(test_events), 5))
    t0 = time.perf_counter()
    for i, e in enumerate(test_events):
        tr = D.Track()
        sets_fn.__wrapped__(e, tr)
        reference[i] = tr.state()
    t_fit = (time.perf_counter() - t0) / len(test_events)
    truth = data["states"][args.events :]
    compare: dict[str, Any] = {}
    for name, fn in (("sets", sets_fn), ("lstm", lstm_fn)):
        rows = {}
        for mode in ("model", "auto"):
            fn.mode = mode
            fn.reset_stats()
            got = np.zeros_like(reference)
            t0 = time.perf_counter()
            for i, e in enumerate(test_events):
                tr = D.Track()
                fn(e, tr)
                got[i] = tr.state()
            rows[mode] = {"seconds_per_event": (time.perf_counter() - t0) / len(test_events),
                          "errors_vs_fit": state_errors(got, reference), "fallbacks": int(fn.stats.fallbacks)}
        Xt, _ = ragged_matrices(sets_fn.spec, {"hits": _hits_ragged(test_events)}, {k: reference[:, j] for j, k in enumerate(STATE)})
        t_batch = per_row(lambda: fn.model.predict(Xt), len(test_events), 1.0)
        compare[name] = {**rows["model"]["errors_vs_fit"], "model_mode": rows["model"], "auto_mode": rows["auto"],
                         "gate": fn.calibration.to_json() if name == "sets" else lstm_gate.report_.to_json(),
                         "batched_seconds_per_event": t_batch}
    compare["sets"]["training"] = {"seconds": sets_result.seconds, "epochs": sets_result.history.epochs,
                                   "parameters": sets_result.history.notes.get("parameters")}
    compare["lstm"]["training"] = {k: lstm_record[k] for k in ("seconds", "epochs", "parameters", "n_train", "n_val")}
    fit_vs_truth = state_errors(reference, truth)

    summary: dict[str, Any] = {
        "machine": machine_name(),
        "propagation_pos_err_p95_um": propagation["pos_err_um"]["p95"],
        "speedup_batched": propagation["speedup"]["batched"],
        "lstm_vs_sets": {"lstm": {k: compare["lstm"][k] for k in state_errors(reference, reference)},
                         "sets": {k: compare["sets"][k] for k in state_errors(reference, reference)}},
        "field_map": {"spacing_m": args.spacing, "nodes": list(fm.shape), "bytes": fm.nbytes, "seconds": t_map},
        "propagation": propagation,
        "sequence": {"events": len(train_events), "test_events": len(test_events), "capture_seconds": t_fit_capture,
                     "fit_seconds_per_event": t_fit, "fit_vs_truth": fit_vs_truth, "tolerance": seq_tol.to_json(),
                     "models": compare, "model_folders": {"sets": str(sets_dir), "lstm": str(lstm_dir)}},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    write_markdown(out / "summary.md", summary)
    console.print("\n" + (out / "summary.md").read_text())
    sets_fn.close()
    prop_batch.close()
    return summary


def _hits_ragged(events: list[Any]) -> Any:
    from phasm.bindings.ragged import RaggedArray

    return RaggedArray.from_list([[(h.x, h.y, h.z) for h in e.hits] for e in events], (3,), np.float64)


def _gate_line(g: dict[str, Any]) -> str:
    if not g["certified"]:
        return "not certified (every call falls back to the fit)"
    return f"certified, bound {g['miss_rate_bound']:.2%}, expected fallback {g['expected_fallback_rate']:.1%}"


def write_markdown(path: Path, s: dict[str, Any]) -> None:
    p = s["propagation"]
    t = p["time_per_track_s"]
    sp = p["speedup"]
    seq = s["sequence"]
    m = seq["models"]
    md = [
        "# phasm tracking demo", "",
        f"Field map: {s['field_map']['spacing_m'] * 100:g} cm mesh, {s['field_map']['bytes'] / 1e6:.1f} MB. Machine: {s['machine']}.", "",
        "## Propagation to the detector plane", "",
        f"Original: adaptive Runge-Kutta-Nystrom through the map, target plane to z = {1.6} m. Surrogate: uniform-field "
        f"helix + MLP {p['hidden']} ({p['training']['parameters']} parameters, trained {p['training']['seconds']:.0f} s on "
        f"{p['training']['n_train']} captured propagations), served by `fn.load_exported` behind a gate certified on "
        f"{p['gate']['n_calibration']} held-out propagations.", "",
        "| measure | value |", "|---|---:|",
        f"| position error at the plane, p50 / p95 / max ({p['tests']} unseen 1-10 GeV tracks) | "
        f"{p['pos_err_um']['p50']:.1f} / {p['pos_err_um']['p95']:.1f} / {p['pos_err_um']['max']:.0f} um |",
        "| p95 by momentum | " + ", ".join(f"{k}: {v:.0f} um" for k, v in p["pos_err_um"]["p95_by_momentum"].items()) + " |",
        f"| slope error p50 / p95 | {p['slope_err_mrad']['p50']:.3f} / {p['slope_err_mrad']['p95']:.3f} mrad |",
        f"| the helix alone (no MLP), position error p95 | {p['helix_alone_pos_err_um_p95']:.0f} um |",
        f"| the same tracks in a map twice as coarse, position shift p50 / p95 | "
        f"{p['map_twice_coarser_pos_shift_um']['p50']:.1f} / {p['map_twice_coarser_pos_shift_um']['p95']:.1f} um |",
        f"| gate: certified bound on trusted calls beyond the tolerance / fallbacks on the unseen tracks | "
        f"{p['gate']['miss_rate_bound']:.2%} (<= 5%) / {p['pos_err_um']['auto_mode_fallbacks']} of {p['tests']} |",
        f"| batch 1: per-track original / surrogate (auto) / (model) | {t['original_one_track'] * 1e6:.0f} / "
        f"{t['surrogate_one_track_auto'] * 1e6:.0f} / {t['surrogate_one_track_model'] * 1e6:.0f} us: **{sp['batch1']:.1f}x** |",
        f"| batch {t['batch']}: vectorised original / surrogate (auto) / (model), per track | {t['original_vectorised'] * 1e6:.2f} / "
        f"{t['surrogate_batched_auto'] * 1e6:.3f} / {t['surrogate_batched_model'] * 1e6:.3f} us: **{sp['batched']:.0f}x** "
        f"({sp['batched_model_mode']:.0f}x without the gate) |",
        f"| batched surrogate vs the per-track original | {sp['batched_vs_one_track_original']:.0f}x |", "",
        "## LSTM vs DeepSets over hits", "",
        f"Original: the track fit in the field (Gauss-Newton on the Runge-Kutta-Nystrom propagation), "
        f"{seq['fit_seconds_per_event'] * 1e3:.1f} ms per event; {seq['events']} fits captured, compared on "
        f"{seq['test_events']} unseen events (errors against the fit; the fit against the truth: position p50 "
        f"{seq['fit_vs_truth']['pos_um_p50']:.0f} um, q/p p50 {seq['fit_vs_truth']['qop_rel_p50']:.2%}).", "",
        "| model | position p50 / p95 | slope p50 / p95 | q/p p50 / p95 | auto mode: fell back | per event, batch 1 (auto) | per event, batched | training |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, label in (("lstm", "LSTM (fn.load_exported)"), ("sets", "DeepSets (fn.train)")):
        r = m[name]
        md.append(f"| {label} | {r['pos_um_p50']:.0f} / {r['pos_um_p95']:.0f} um | {r['slope_mrad_p50']:.2f} / "
                  f"{r['slope_mrad_p95']:.2f} mrad | {r['qop_rel_p50']:.2%} / {r['qop_rel_p95']:.2%} | "
                  f"{r['auto_mode']['fallbacks']} of {seq['test_events']} | {r['auto_mode']['seconds_per_event'] * 1e6:.0f} us | "
                  f"{r['batched_seconds_per_event'] * 1e6:.1f} us | {r['training']['seconds']:.0f} s |")
    md += ["", "Gates: both calibrated on the same held-out fits for seed-level tolerances, |dx0|, |dy0| <= 5 mm, "
           "|dtx|, |dty| <= 20 mrad, |d(q/p)| <= 25% or 0.05/GeV, at most 10% of trusted calls beyond (95% confidence): "
           + "; ".join(f"{label} {_gate_line(m[name]['gate'])}" for name, label in (("lstm", "LSTM"), ("sets", "DeepSets")))
           + ".", ""]
    path.write_text("\n".join(md))


if __name__ == "__main__":
    main()
