"""Trust-gate commands: ``calibrate`` (train + certify a gate) and ``gate`` (show a model's calibration).

Example
-------
    phasm calibrate captures/f.h5 -o models/f --rel 0.01 --max-miss-rate 0.01 \\
        --backend ensemble -p member='"torch"' -p k=5
    phasm gate models/f
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from phasm.cli.common import check_backend_params, check_model_destination, check_range, console, fail, parse_params


def _print_report(report: dict[str, Any]) -> None:
    t = Table(title="trust gate calibration")
    t.add_column("quantity")
    t.add_column("value")
    rows = [
        ("certified", "yes" if report["certified"] else "[red]no: every call falls back[/]"),
        ("score", report["score"]),
        ("threshold (interior)" if len(report.get("groups") or []) > 1 else "threshold",
         f"{float(report['threshold']):.4g}"),
        ("max miss rate (asked)", f"{report['max_miss_rate']:.3%}"),
        ("miss-rate bound (certified)", f"{report['miss_rate_bound']:.3%}" if report["certified"] else "-"),
        ("confidence", f"{report['confidence']:.0%}"),
        ("expected fallback rate", f"{report['expected_fallback_rate']:.2%}"),
        ("out of domain (calibration rows)", f"{report['domain_rejected_rate']:.2%}"),
        ("calibration rows", str(report["n_calibration"])),
        ("accepted / misses", f"{report['accepted']} / {report['accepted_misses']}"),
        ("rows needed to certify (no miss)", str(report["min_rows_needed"])),
        ("method", report["method"]),
    ]
    if report.get("regions"):
        rows.insert(2, ("regions", str(report["regions"])))
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)
    groups = report.get("groups") or []
    if len(groups) > 1:
        g_t = Table(title="per region (each certified on its own calibration rows)")
        for col in ("region", "rows", "threshold", "miss-rate bound", "confidence", "accepted / misses", "expected fallback"):
            g_t.add_column(col)
        for g in groups:
            bound = (f"{g['miss_rate_bound']:.3%}" if g["certified"] else
                     "[red]falls back[/]" if g["tested"] else f"[red]falls back: {g['n_certify']} < {g['min_rows_needed']} rows[/]")
            g_t.add_row(g["label"], str(g["n_certify"]), f"{float(g['threshold']):.4g}", bound, f"{g['confidence']:.2%}",
                        f"{g['accepted']} / {g['accepted_misses']}", f"{g['expected_fallback_rate']:.1%}")
        console.print(g_t)


def calibrate(
    store: Path = typer.Argument(..., help="Capture store to train and calibrate on."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder to write (the gate is stored in it)."),
    rel: Optional[float] = typer.Option(0.01, help="Relative error tolerance per call (L2 over each output)."),
    abs_: Optional[float] = typer.Option(None, "--abs", help="Absolute error tolerance per call (max element)."),
    max_miss_rate: float = typer.Option(0.01, help="Bound on the share of model answers out of tolerance."),
    confidence: float = typer.Option(0.95, help="Confidence of the bound over the calibration draw."),
    calibration_fraction: float = typer.Option(0.25, help="Share of rows held out to calibrate."),
    backend: str = typer.Option("ensemble", help="Backend (default: an ensemble; see `phasm backends`)."),
    score: str = typer.Option("auto", help="Gate score: auto, spread, residual, spread+residual, distance."),
    regions: str = typer.Option("auto", help="Regions certified separately: auto, edge, distance, edge+distance, "
                                             "none (one threshold for the average)."),
    seed: int = typer.Option(0, help="Random seed."),
    param: list[str] = typer.Option([], "--param", "-p", help="Backend parameter KEY=VALUE (JSON value), repeatable."),
) -> None:
    """Train a model and certify its trust gate for a tolerance; print the calibration."""
    from phasm.gate import Tolerance, train_calibrated
    from phasm.store import CaptureStore

    check_range("--confidence", confidence, low=0.0, high=1.0, low_open=True, high_open=True)
    check_model_destination("--out", out)
    params = parse_params(param)
    check_backend_params(backend, params)
    source = CaptureStore(store)
    try:
        tol = Tolerance(rel=rel, abs=abs_, max_miss_rate=max_miss_rate)
        art, result, gate = train_calibrated(source, None, tol, backend=backend, seed=seed,
                                             calibration_fraction=calibration_fraction, confidence=confidence,
                                             score=score, regions=regions, **params)
    except ValueError as exc:  # the documented refusals (too few rows, bad tolerance...); phasm errors pass up
        fail(str(exc))
    art.save(out)
    console.print(result.summary())
    if gate.report_ is not None:
        _print_report(gate.report_.to_json())
    console.print(f"model and gate written to [bold]{out}[/]")


def gate(model: Path = typer.Argument(..., help="Model folder.")) -> None:
    """Show the trust-gate calibration stored in a model folder."""
    from phasm.train.artefact import ModelArtefact

    meta = ModelArtefact.read_metadata(model)
    g = meta.get("gate")
    if not isinstance(g, dict) or not isinstance(g.get("report"), dict):
        fail(f"{model}: no calibrated gate stored; train with a tolerance (`phasm calibrate`)")
    console.print(f"tolerance: {json.dumps(g.get('tolerance'))}")
    try:
        _print_report(g["report"])
    except (KeyError, TypeError, ValueError) as exc:  # a report phasm did not write (the folder is verified)
        fail(f"{model}: the stored gate report is malformed ({type(exc).__name__}: {exc})")


def register(app: typer.Typer) -> None:
    app.command()(calibrate)
    app.command()(gate)
