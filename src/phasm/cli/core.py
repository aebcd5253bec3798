"""Core commands: ``info``, ``backends``, ``train``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from phasm.cli.common import check_backend_params, check_model_destination, check_range, console, fail, parse_params
from phasm.cli.common import print_spec as _print_spec


def info(path: Path = typer.Argument(..., help="A capture store (.h5) or a model folder.")) -> None:
    """Show the spec, size and statistics of a capture store or a model folder."""
    from phasm.store import CaptureStore, StoreError

    if path.is_dir() and (path / "phasm.json").exists():
        from phasm.cli.model_info import print_model_info

        print_model_info(path)
        return
    if path.is_dir():  # a store is a file (its shards sit beside it): a folder here is a model folder or nothing
        fail(f"{path}: a folder without phasm.json; expected a model folder or a capture store (.h5)")
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skipped files are listed below
            store = CaptureStore(path)
        stats = store.statistics()  # reads, and so verifies, every row
    except (FileNotFoundError, StoreError) as exc:
        fail(str(exc))
    _print_spec(store.spec)
    console.print(f"rows: [bold]{len(store)}[/] in {len(store.files)} file(s)")
    if store.skipped:
        console.print(f"[yellow]skipped {len(store.skipped)} file(s)[/]: "
                      + "; ".join(f"{p.name}: {reason}" for p, reason in store.skipped), soft_wrap=True)
    t = Table(title="statistics")
    for col in ("variable", "count", "min", "max", "mean", "std"):
        t.add_column(col)
    for name, s in stats.items():
        if not s["count"]:  # a variable-length input whose every collection was empty: no value to describe
            t.add_row(name, "0", "-", "-", "-", "-")
            continue
        t.add_row(name, str(s["count"]), f"{s['min']:.6g}", f"{s['max']:.6g}", f"{s['mean']:.6g}", f"{s['std']:.6g}")
    console.print(t)


def backends() -> None:
    """List the registered model backends and whether each can run here."""
    from phasm.backends import list_backends

    t = Table(title="phasm backends")
    for col in ("name", "status", "plugin"):
        t.add_column(col)
    for b in list_backends():
        if b.available:
            status = "[green]available[/]"
        elif b.error:
            status = f"[red]broken[/]: {b.error}"
        else:
            status = f"[yellow]missing[/] {', '.join(b.missing)} (pip install 'phasm[{b.extra}]')"
        t.add_row(b.name, status, b.target)
    console.print(t)
    from phasm.train.inference import engine_status

    console.print(engine_status())


def train(
    store: Path = typer.Argument(..., help="Capture store to train on."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder to write."),
    backend: str = typer.Option("auto", help="Backend name (see `phasm backends`); auto: chosen from the data."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs (learned backends)."),
    val_fraction: float = typer.Option(0.2, help="Held-out validation share."),
    seed: int = typer.Option(0, help="Random seed."),
    param: list[str] = typer.Option([], "--param", "-p", help="Backend parameter KEY=VALUE (JSON value), repeatable."),
    transform: list[str] = typer.Option([], "--transform", "-t",
                                        help="VARIABLE=KIND (log, asinh, logit, standardise, none), repeatable; "
                                             "the others are chosen from the captures."),
    search: int = typer.Option(0, help="Try this many MLP configurations (Optuna) and keep the best."),
    time_budget: Optional[float] = typer.Option(None, help="Seconds for backend auto (or the search) to spend."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Train a model on a capture store and save it as a model folder (with the captured-range gate; a generative
    backend, ``flow`` or ``vae``: a model of a stochastic function's distribution, with its held-out report)."""
    from phasm.backends import get_backend
    from phasm.gate.calibrate import train_gated
    from phasm.store import CaptureStore

    check_range("--val-fraction", val_fraction, low=0.0, high=1.0, high_open=True)
    check_range("--epochs", epochs, low=1)
    check_range("--search", search, low=0)
    check_range("--time-budget", time_budget, low=0, low_open=True)
    check_model_destination("--out", out)
    params = parse_params(param)
    if epochs is not None:
        params["epochs"] = epochs
    if backend != "auto":
        check_backend_params(backend, params)
    transforms = {}
    for item in transform:
        name, sep, kind = item.partition("=")
        if not sep or not name or not kind:
            fail(f"--transform {item!r}: expected VARIABLE=KIND, e.g. tau=log")
        transforms[name] = kind
    source = CaptureStore(store)
    try:
        if backend != "auto" and get_backend(backend).stochastic:  # generative: a stochastic function's samples
            from phasm.train.stochastic import fit_generator

            art, result = fit_generator(source, backend=backend, val_fraction=val_fraction, seed=seed,
                                        verbose=not quiet, **params)
        else:
            art, result = train_gated(source, source.spec, None, backend=backend, val_fraction=val_fraction,
                                      seed=seed, verbose=not quiet, transforms=transforms or None, search=search,
                                      time_budget=time_budget, **params)
    except ValueError as exc:  # documented refusals (no finite rows...); phasm's own errors pass up
        fail(str(exc))
    art.save(out)
    console.print(result.summary())
    console.print(f"model written to [bold]{out}[/]")


def register(app: typer.Typer) -> None:
    app.command()(info)
    app.command()(backends)
    app.command()(train)
