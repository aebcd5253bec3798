"""Profiler commands: ``phasm profile -- python script.py ARGS`` and ``phasm bench module:function``."""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.table import Table

from phasm.cli.common import check_range, console, fail


def _fmt(x: float) -> str:
    return "inf" if x is None or math.isinf(x) else f"{x:.2f}"


def print_candidates(ranking: Any, limit: int = 15) -> None:
    """The ranking as a rich table."""
    root = f" within {ranking.root}" if ranking.root else ""
    if not console.is_terminal:
        console.width = max(console.width, 140)  # files and pipes: do not truncate function names
    t = Table(title=f"surrogate candidates{root} (best first)")
    for col in ("#", "function", "where", "p wall", "p on-CPU", "p off-CPU", "Amdahl", "s", "speedup(s)",
                "Gustafson"):
        t.add_column(col, justify="left" if col in ("function", "where") else "right", no_wrap=col == "function")
    for k, c in enumerate(ranking.candidates[:limit], 1):
        t.add_row(str(k), c.name, f"{os.path.basename(c.file)}:{c.line}", f"{c.p:.1%}", f"{c.p_on:.1%}",
                  f"{c.p_off:.1%}", _fmt(c.amdahl), f"{c.s:.3g}{'*' if c.s_source == 'cost model' else ''}",
                  _fmt(c.speedup), _fmt(c.gustafson))
    console.print(t)
    console.print("Amdahl: 1/(1-p) (infinitely fast surrogate); speedup(s): 1/((1-p)+p/s); Gustafson: (1-p)+p*s"
                  + ("; * s measured by the cost model (phasm bench), others the stated --speed"
                     if any(c.s_source == "cost model" for c in ranking.candidates) else "; s: the stated --speed"))
    dropped = {k: len(v) for k, v in ranking.dropped.items() if v}
    if dropped:
        console.print(f"filtered out: {dropped}")


def profile(
    command: List[str] = typer.Argument(..., help="The program to profile, after '--': python script.py ARGS"),
    rate: float = typer.Option(100.0, "--rate", help="Samples per second."),
    out: Path = typer.Option(Path("phasm-profile"), "--out", help="Folder for the outputs."),
    root: Optional[str] = typer.Option(None, "--root", help="Only time under this function (module:func), "
                                       "e.g. the event loop; shares are of its time."),
    sampler: str = typer.Option("auto", "--sampler", help="auto | py-spy | inprocess"),
    speed: float = typer.Option(10.0, "--speed", help="Stated surrogate speed s for candidates without a cost model."),
    cost: List[Path] = typer.Option([], "--cost", help="Cost-model JSON from 'phasm bench' (repeatable)."),
    min_share: float = typer.Option(0.02, "--min-share", help="Drop functions below this share."),
    top: int = typer.Option(15, "--top", help="Rows in the printed table."),
) -> None:
    """Sample a program (on-CPU and off-CPU), draw flame graphs and rank functions worth replacing.

    Writes oncpu/offcpu .folded, .svg and .speedscope.json, candidates.json and session.json to --out.
    """
    from phasm.profile.costmodel import load_costs
    from phasm.profile.outputs import write_outputs
    from phasm.profile.ranking import rank
    from phasm.profile.record import SAMPLERS, record

    if sampler not in SAMPLERS:
        fail(f"--sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    check_range("--top", top, low=1)
    if not 1 <= rate <= 10000:
        fail(f"--rate must be within 1..10000 samples per second, got {rate}")
    for p in cost:
        if not p.exists():
            fail(f"--cost file not found: {p}")
    try:
        costs = load_costs(cost)
    except (ValueError, KeyError, json.JSONDecodeError) as exc:
        fail(f"--cost: {exc}")
    try:
        session = record(list(command), rate, sampler=sampler)
    except (ValueError, RuntimeError, OSError) as exc:
        fail(str(exc))
    try:
        ranking = rank(session, root=root, speed=speed, cost=costs, min_share=min_share)
    except ValueError as exc:
        fail(str(exc))
    paths = write_outputs(session, ranking, out)
    console.print(f"profiled [bold]{' '.join(command)}[/]: {session.duration_s:.2f} s, {session.n_samples} samples "
                  f"at {session.rate_hz:g} Hz ({session.sampler}); on-CPU {ranking.totals['on']:.2f} s, "
                  f"off-CPU {ranking.totals['off']:.2f} s")
    print_candidates(ranking, top)
    console.print(f"outputs in {out}/: {', '.join(sorted(p.name for p in paths.values()))}")
    if session.meta.get("warning"):
        console.print(f"[yellow]warning:[/] {session.meta['warning']}")
    status = session.meta.get("exit_status", 0)
    if status:
        console.print(f"[yellow]the program exited with status {status}[/]")


def _resolve(target: str) -> Any:
    if ":" not in target:
        fail(f"expected module:function, got {target!r}")
    mod_name, _, attr = target.partition(":")
    sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as exc:
        fail(f"cannot import module {mod_name!r}: {exc}")
    for part in attr.split("."):
        if not hasattr(obj, part):
            fail(f"module {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def bench(
    target: str = typer.Argument(..., help="The surrogate-wrapped function, module:function."),
    store: Optional[Path] = typer.Option(None, "--store", help="Capture store with inputs (default: the function's)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Model folder (default: the function's attached model)."),
    out: Path = typer.Option(Path("phasm-bench"), "--out", help="Folder for cost.json and cost.png."),
    p: Optional[float] = typer.Option(None, "--p", help="Share of the run in this function (else from --profile)."),
    profile_dir: Optional[Path] = typer.Option(None, "--profile", help="A 'phasm profile' output folder to take p from."),
    budget: float = typer.Option(1.0, "--budget", help="Seconds per timing loop."),
    widths: str = typer.Option("32,128,512", "--widths", help="MLP widths to time (needs torch); '' to skip."),
) -> None:
    """Cost model of a surrogate: time per call of the original, the model (vs batch size and width), the gate,
    the fallback rate, the effective speed s_eff and the predicted end-to-end speedup."""
    from phasm.profile.costmodel import measure_cost, plot_cost
    from phasm.surrogate.wrapper import Surrogate

    check_range("--budget", budget, low=0.0, low_open=True)
    fn = _resolve(target)
    if not isinstance(fn, Surrogate):
        fail(f"{target} is a {type(fn).__name__}, not a function wrapped by @phasm.surrogate")
    if p is not None and not 0 <= p <= 1:
        fail(f"--p must be within [0, 1], got {p}")
    try:
        ws = tuple(int(w) for w in widths.split(",") if w.strip())
    except ValueError:
        fail(f"--widths must be comma-separated integers, got {widths!r}")
    try:
        cm = measure_cost(fn, store=store, model=model, budget_s=budget, widths=ws or None)
    except ValueError as exc:  # measure_cost's refusals (no model, no rows...); OS and phasm errors pass up
        fail(str(exc))
    out.mkdir(parents=True, exist_ok=True)
    cm.save(out / "cost.json")
    png = plot_cost(cm, out / "cost.png")
    if p is None and profile_dir is not None:
        try:
            cands = json.loads((profile_dir / "candidates.json").read_text())
            match = [c for c in cands if c["name"] == cm.function]
        except (ValueError, KeyError, TypeError) as exc:  # a file we did not write as expected: say which
            fail(f"{profile_dir / 'candidates.json'} is not a phasm profile's candidate list ({type(exc).__name__}: {exc})")
        if not match:
            fail(f"{cm.function} is not among the candidates in {profile_dir}/candidates.json")
        p = match[0]["p"]
    t = Table(title=f"cost model of {cm.function} on {cm.machine}")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    rows = [("original per call", f"{cm.t_orig_s * 1e6:.1f} us"), ("surrogate call per call", f"{cm.t_model_s * 1e6:.1f} us"),
            ("gate per call", f"{cm.t_gate_s * 1e6:.1f} us"), ("fallback rate f", f"{cm.fallback_rate:.2%}"),
            ("s_eff", f"{cm.s_eff:.2f}")]
    if p is not None:
        rows += [("share p", f"{p:.1%}"), ("predicted speedup (Amdahl)", f"{cm.speedup(p):.2f}"),
                 ("scaled speedup (Gustafson)", f"{cm.scaled_speedup(p):.2f}")]
    for a, b in rows:
        t.add_row(a, b)
    console.print(t)
    bt = Table(title="bare model: time per row vs batch size")
    bt.add_column("batch", justify="right")
    bt.add_column("us / row", justify="right")
    for b, s in cm.model_curve.items():
        bt.add_row(b, f"{s * 1e6:.3f}")
    console.print(bt)
    if cm.width_curves:
        wt = Table(title="plain MLP (3 hidden layers): time per row vs width")
        for col in ("device", "width", "batch 1 us/row", "best us/row", "at batch"):
            wt.add_column(col, justify="right")
        for dev, curves in cm.width_curves.items():
            for w, curve in curves.items():
                best = min(curve, key=lambda b: curve[b])
                wt.add_row(dev, w, f"{curve['1'] * 1e6:.2f}" if "1" in curve else "-", f"{curve[best] * 1e6:.3f}", best)
        console.print(wt)
    console.print(f"wrote {out / 'cost.json'} and {png}; use it with: phasm profile --cost {out / 'cost.json'} -- ...")


def register(app: typer.Typer) -> None:
    app.command(context_settings={"allow_extra_args": False, "ignore_unknown_options": True})(profile)
    app.command()(bench)
