"""Calorimeter showers end to end: Monte Carlo data set, a generative surrogate, validation on distributions.

Usage::

    python examples/calorimeter/run_calorimeter.py --out demo-output/calorimeter        # make demo-calorimeter
    python examples/calorimeter/run_calorimeter.py --out demo-output/calorimeter --full # make demo-calorimeter FULL=1
    python examples/calorimeter/run_calorimeter.py --out /tmp/c --showers 300 --emin 2 --emax 5 --max-seconds 10

Steps: simulate electron showers at incident energies log-uniform in ``[--emin, --emax]`` GeV with
the numpy Monte Carlo (``shower.py``; ``--workers`` processes), check its physics (longitudinal
profile against shower theory, sampling fraction, resolution), train a conditional flow on three
quarters of the showers through phasm's stochastic gate (``DistributionTolerance(auc=0.75)``), and
compare the held-out quarter with generated showers.  Writes ``summary.json``, ``summary.md`` and
PNG plots into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from physics import longitudinal_fit, resolution_fit  # noqa: E402
from geant4_shower import Geant4Unavailable, require_geant4, simulate_showers_geant4  # noqa: E402
from shower import Calorimeter, simulate_showers  # noqa: E402

SIMULATORS = {"numpy": simulate_showers, "geant4": simulate_showers_geant4}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("demo-output/calorimeter"))
    p.add_argument("--full", action="store_true",
                   help="the bigger configuration: 10000 showers, up to 15 min of training")
    p.add_argument("--showers", type=int, default=None, help="Monte Carlo showers (default 4000; --full 10000)")
    p.add_argument("--emin", type=float, default=10.0, help="lowest incident energy, GeV (default 10)")
    p.add_argument("--emax", type=float, default=100.0, help="highest incident energy, GeV (default 100)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Monte Carlo processes (default: CPUs)")
    p.add_argument("--chunk", type=int, default=25, help="showers per Monte Carlo call (default 25)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 200, early stopping on the validation loss)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="training time limit (default 150 s; --full 900 s)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--auc", type=float, default=0.75, help="the stochastic gate's AUC bound (default 0.75)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--simulator", choices=sorted(SIMULATORS), default="numpy",
                   help="the showers' simulation: shower.py's numpy Monte Carlo (default) or Geant4 (geant4_shower.py; "
                        "needs geant4-pybind and GEANT4_DATA_DIR)")
    args = p.parse_args(argv)
    full = args.full
    args.showers = args.showers or (10000 if full else 4000)
    args.epochs = args.epochs or 200
    args.max_seconds = args.max_seconds or (900.0 if full else 300.0)
    for name in ("showers", "epochs", "workers", "chunk"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if not 0 < args.emin < args.emax:
        p.error(f"need 0 < --emin < --emax, got {args.emin} and {args.emax}")
    if args.simulator == "geant4":
        try:
            require_geant4()  # here, not in a worker: the variable, the data sets, the module; imports nothing
        except Geant4Unavailable as e:
            p.error(f"--simulator geant4: {e}")
    return args


def _chunk(job: tuple[int, np.ndarray, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    seed, energies, simulator = job  # geant4: each worker process builds its own run manager once
    t0 = time.process_time()
    r = SIMULATORS[simulator](energies * 1e3, np.random.default_rng(seed), details=True)
    return energies, r.voxels, r.visible, r.cell_deposit, time.process_time() - t0


def simulate_dataset(n: int, emin: float, emax: float, workers: int, chunk: int, seed: int,
                     simulator: str = "numpy") -> dict[str, np.ndarray]:
    """``n`` electron showers, energies (GeV) log-uniform in ``[emin, emax]``, in ``workers`` processes."""
    rng = np.random.default_rng(seed)
    energies = np.exp(rng.uniform(np.log(emin), np.log(emax), n))
    jobs = [(seed * 100_003 + i, energies[s:s + chunk], simulator) for i, s in enumerate(range(0, n, chunk))]
    t0 = time.perf_counter()
    if workers > 1:
        with get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_chunk, jobs)
    else:
        parts = [_chunk(j) for j in jobs]
    wall = time.perf_counter() - t0
    E, V, vis, cells, cpu = zip(*parts)
    return {"energy": np.concatenate(E), "voxels": np.concatenate(V), "visible": np.concatenate(vis),
            "cells": np.concatenate(cells), "cpu_seconds": float(sum(cpu)), "wall_seconds": wall}


def time_mc_single(energies: np.ndarray, seed: int, simulator: str = "numpy") -> float:
    """Seconds per shower when the Monte Carlo is called once per shower (as a simulation calls it)."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for e in energies:
        SIMULATORS[simulator](np.array([e * 1e3]), rng)
    return (time.perf_counter() - t0) / len(energies)


def time_model(art, energies: np.ndarray, batch: int, repeat: int = 3) -> float:
    """Seconds per shower of the generative model, ``batch`` showers per call (best of ``repeat``)."""
    from phasm.train.stochastic import sample_model

    X = np.resize(energies, batch)[:, None] * 1e3
    sample_model(art, X[:8], rng=0)
    best = np.inf
    for r in range(repeat):
        t0 = time.perf_counter()
        sample_model(art, X, rng=r)
        best = min(best, time.perf_counter() - t0)
    return best / batch


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import phasm
    from phasm.gate.distribution import train_stochastic
    from phasm.train.distribution_plots import plot_report
    from phasm.train.stochastic import sample_model

    cal = Calorimeter()
    t_start = time.perf_counter()
    print(f"simulating {args.showers} showers ({args.simulator}), {args.emin:g}-{args.emax:g} GeV, "
          f"{args.workers} processes ...", flush=True)
    data = simulate_dataset(args.showers, args.emin, args.emax, args.workers, args.chunk, args.seed, args.simulator)
    E, V = data["energy"], data["voxels"]
    print(f"  {data['wall_seconds']:.1f} s wall, {data['cpu_seconds'] / len(E) * 1e3:.1f} ms CPU per shower (batched)", flush=True)

    # -- the Monte Carlo's physics ------------------------------------------------------------
    gamma_E = np.array([args.emin, args.emax])
    gam = [SIMULATORS[args.simulator](np.full(20, e * 1e3), np.random.default_rng(args.seed + 7), particle="gamma",
                                      details=True) for e in gamma_E]
    physics = {
        "simulator": args.simulator,
        "sampling_fraction": float(np.mean(data["visible"] / (E * 1e3))),
        "mip_sampling_fraction": cal.mip_sampling_fraction,
        "critical_energy_mev": cal.effective_critical_energy,
        "x0_cm": cal.effective_x0_cm,
        "electron_profile": longitudinal_fit(E, data["cells"], cal, particle="e-"),
        "photon_profile": longitudinal_fit(np.repeat(gamma_E, 20), np.concatenate([g.cell_deposit for g in gam]), cal,
                                           particle="gamma"),
    }
    physics["resolution"] = resolution_fit(E, V.reshape(len(V), -1).sum(1) / 1e3, physics["sampling_fraction"])

    # -- train through the stochastic gate -----------------------------------------------------
    spec = phasm.Spec.from_declarations("calorimeter.shower", {"energy": phasm.Scalar()},
                                        {"voxels": phasm.Array(cal.voxel_shape, dtype="float32")})
    X, Y = E[:, None] * 1e3, V.reshape(len(V), -1)
    centres = [0.5 * (a + b) for a, b in zip(cal.radial_edges_cm[:-1], cal.radial_edges_cm[1:])]
    print("training the flow ...", flush=True)
    t0 = time.perf_counter()
    art, result, gate = train_stochastic(
        (X, Y), spec, phasm.DistributionTolerance(auc=args.auc), backend="flow", seed=args.seed,
        radial_centres=centres, epochs=args.epochs, max_seconds=args.max_seconds, hidden=64, flow_layers=4,
        shape_layers=4, bins=8, shape_bins=4, shape_transform="mixed", lr=2e-3, batch_size=256)
    train_seconds = time.perf_counter() - t0
    report = result.report
    print(result.summary(), flush=True)
    print(gate.describe(), flush=True)
    art.save(out / "model")

    # -- timing ---------------------------------------------------------------------------------
    probe = np.exp(np.random.default_rng(1).uniform(np.log(args.emin), np.log(args.emax), 8))
    mc_single = time_mc_single(probe, args.seed + 3, args.simulator)
    mc_batched = data["cpu_seconds"] / len(E)
    model_batched = time_model(art, probe, 4096)
    model_single = time_model(art, probe[:1], 1, repeat=20)

    # -- plots ------------------------------------------------------------------------------------
    from phasm.gate.calibrate import split_calibration

    held = split_calibration(len(X), 0.25, args.seed)
    gen = sample_model(art, X[held], np.random.default_rng([args.seed, 0x6E4]))
    pngs = plot_report(report, X[held], Y[held], gen, out, output_shape=cal.voxel_shape, radial_centres=centres,
                       condition_name="incident energy (MeV)")
    from physics import plot_physics, resolution_by_bin

    pngs += plot_physics(physics, out)
    # The resolution against all simulated showers (training ones included: a property of the simulation,
    # measured on 4x the held-out showers), generated 10 per held-out energy, in the held-out energy bins.
    edges = np.quantile(E[held], np.linspace(0, 1, 5))
    Xk = np.tile(X[held], (10, 1))
    res_sim, err_sim = resolution_by_bin(E, Y.sum(1) / 1e3, edges)
    res_gen, err_gen = resolution_by_bin(Xk[:, 0] / 1e3, sample_model(art, Xk, np.random.default_rng([args.seed, 7])).sum(1) / 1e3,
                                         edges)
    dev_all = np.abs(res_gen / res_sim - 1)
    worst = int(np.argmax(dev_all))

    summary = {
        "auc": report.auc,
        "auc_stderr": report.auc_stderr,
        "gate_accepted": gate.accepted_,
        "speedup_batched": mc_single / model_batched,
        "speedup_vs_mc_batched": mc_batched / model_batched,
        "speedup_single": mc_single / model_single,
        "layer_energy_max_rel_dev": report.layer_energy_max_rel_dev,
        "resolution_rel_dev": report.resolution_rel_dev,
        "resolution_rel_dev_stderr": report.response.get("resolution_max_rel_dev_stderr"),
        "resolution_rel_dev_all_showers": float(dev_all[worst]),
        "resolution_rel_dev_all_showers_stderr": float(res_gen[worst] / res_sim[worst]
                                                       * np.hypot(err_sim[worst] / res_sim[worst], err_gen[worst] / res_gen[worst])),
        "resolution_all_showers": {"edges_gev": edges.tolist(), "simulated": res_sim.tolist(), "generated": res_gen.tolist()},
        "seconds_per_shower_mc": mc_single,
        "seconds_per_shower_mc_batched": mc_batched,
        "seconds_per_shower_model": model_batched,
        "seconds_per_shower_model_single": model_single,
        "showers": int(len(E)), "held_out": int(report.n_rows), "energy_gev": [args.emin, args.emax],
        "voxels": list(cal.voxel_shape), "train_seconds": train_seconds, "epochs": result.history.epochs,
        "mc_wall_seconds": data["wall_seconds"], "total_seconds": time.perf_counter() - t_start,
        "physics": physics, "response": report.response, "layers": report.layers,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}",
        "plots": [p.name for p in pngs],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    (out / "summary.md").write_text(summary_markdown(summary))
    print(summary_markdown(summary))
    return summary


def _stderr(err: float | None) -> str:
    """`` +- x%``: what the held-out showers' number alone lets a deviation be (one standard error)."""
    return f" +- {err:.1%} (sample sizes)" if err is not None else ""


def summary_markdown(s: dict) -> str:
    ph = s["physics"]
    lines = [
        "# Calorimeter showers: Monte Carlo vs generative surrogate", "",
        f"{s['showers']} electron showers, {s['energy_gev'][0]:g}-{s['energy_gev'][1]:g} GeV, voxels "
        f"{' x '.join(map(str, s['voxels']))} (layers x radial x angular); {s['held_out']} held out; {s['machine']}.", "",
        "| metric | target | measured |", "|---|---|---|",
        f"| classifier AUC, held-out vs generated | <= 0.75 | {s['auc']:.3f} +- {s['auc_stderr']:.3f} |",
        f"| mean energy per layer, largest deviation | <= 5% | {s['layer_energy_max_rel_dev']:.2%} |",
        f"| resolution, largest deviation (energy bins) | <= 10% | {s['resolution_rel_dev']:.2%}"
        f"{_stderr(s.get('resolution_rel_dev_stderr'))} |",
        f"| resolution vs all {s['showers']} simulated showers (training ones included), largest deviation | <= 10% | "
        f"{s['resolution_rel_dev_all_showers']:.2%}{_stderr(s.get('resolution_rel_dev_all_showers_stderr'))} |",
        f"| speed-up, batched model vs Monte Carlo per call | >= 1000x | {s['speedup_batched']:.0f}x |",
        f"| speed-up, batched model vs batched Monte Carlo | | {s['speedup_vs_mc_batched']:.0f}x |",
        f"| speed-up, model vs Monte Carlo, one shower per call | | {s['speedup_single']:.0f}x |", "",
        "| seconds per shower | Monte Carlo | model |", "|---|---|---|",
        f"| one per call | {s['seconds_per_shower_mc']:.3g} | {s['seconds_per_shower_model_single']:.3g} |",
        f"| batched | {s['seconds_per_shower_mc_batched']:.3g} | {s['seconds_per_shower_model']:.3g} |", "",
        f"Stochastic gate: {'accepted' if s['gate_accepted'] else 'refused'}.  Training {s['train_seconds']:.0f} s "
        f"({s['epochs']} epochs); Monte Carlo data set {s['mc_wall_seconds']:.0f} s; total {s['total_seconds']:.0f} s.", "",
        "## The Monte Carlo's physics", "",
        f"Sampling fraction {ph['sampling_fraction']:.4f} (a minimum-ionising particle: {ph['mip_sampling_fraction']:.4f}); "
        f"cell mixture X0 = {ph['x0_cm']:.3f} cm, critical energy {ph['critical_energy_mev']:.2f} MeV.", "",
        "| particle | energy (GeV) | shower maximum t_max (X0) | theory ln(E/Ec) + C |", "|---|---|---|---|",
    ]
    for key in ("electron_profile", "photon_profile"):
        for row in ph[key]["rows"]:
            lines.append(f"| {ph[key]['particle']} | {row['energy_gev']:.1f} | {row['t_max']:.2f} | {row['theory']:.2f} |")
    r = ph["resolution"]
    lines += ["", f"Energy resolution: sigma/E = {r['a']:.1%}/sqrt(E/GeV) (+) {r['b']:.2%} (fit to the core widths of "
              f"{len(r['rows'])} energy bins).", ""]
    lines += [f"![{p}]({p})" for p in s["plots"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
