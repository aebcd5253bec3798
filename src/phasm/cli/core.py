"""Core commands: ``info``, ``backends``, ``train``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from phasm.cli.common import console, fail, parse_params


def _print_spec(spec: Any) -> None:
    table = Table(title=f"spec of {spec.function} (hash {spec.hash}{', batched' if spec.batched else ''})")
    for col in ("variable", "direction", "shape", "dtype", "where"):
        table.add_column(col)
    for v in spec.variables:
        table.add_row(v.name, v.direction, "scalar" if not v.shape else "x".join(map(str, v.shape)), str(v.dtype), repr(v.optic))
    console.print(table)


def info(path: Path = typer.Argument(..., help="A capture store (.h5) or a model folder.")) -> None:
    """Show the spec, size and statistics of a capture store or a model folder."""
    from phasm.store import CaptureStore, StoreError
    from phasm.train.artefact import ArtefactError, ModelArtefact

    if path.is_dir() and (path / "phasm.json").exists():
        try:
            meta = ModelArtefact.read_metadata(path)
        except ArtefactError as exc:
            fail(str(exc))
        from phasm.bindings.spec import Spec

        _print_spec(Spec.from_json(meta["spec"]))
        b = meta["backend"]
        console.print(f"model: backend [bold]{b['name']}[/] {b.get('version', '')}, created {meta.get('created')}, "
                      f"phasm {meta.get('phasm_version')}")
        console.print(f"parameters: {json.dumps(b.get('params', {}))}")
        tr = meta.get("training", {})
        if tr:
            console.print(f"trained on {tr.get('n_train')} rows ({tr.get('n_val')} validation), "
                          f"{tr.get('epochs')} epochs, {tr.get('seconds', 0):.2f} s on {tr.get('device')}")
        metrics = meta.get("metrics") or {}
        if metrics:
            t = Table(title="validation error")
            for col in ("output", "rmse", "max abs", "rel p50", "rel p90", "rel p99"):
                t.add_column(col)
            for name, m in metrics.items():
                t.add_row(name, f"{m['rmse']:.4g}", f"{m['max_abs']:.4g}", f"{m['rel_p50']:.3%}", f"{m['rel_p90']:.3%}", f"{m['rel_p99']:.3%}")
            console.print(t)
        if "gate" in meta:
            console.print(f"gate: {json.dumps({k: v for k, v in meta['gate'].items() if not isinstance(v, (list, dict))})}"
                          + (" (details: `phasm gate`)" if "report" in meta["gate"] else ""))
        return
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


def train(
    store: Path = typer.Argument(..., help="Capture store to train on."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder to write."),
    backend: str = typer.Option("torch", help="Backend name (see `phasm backends`)."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs (learned backends)."),
    val_fraction: float = typer.Option(0.2, help="Held-out validation share."),
    seed: int = typer.Option(0, help="Random seed."),
    param: list[str] = typer.Option([], "--param", "-p", help="Backend parameter KEY=VALUE (JSON value), repeatable."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Train a model on a capture store and save it as a model folder."""
    from phasm.backends import BackendError
    from phasm.store import CaptureStore, StoreError
    from phasm.train import fit_model

    params = parse_params(param)
    if epochs is not None:
        params["epochs"] = epochs
    try:
        source = CaptureStore(store)
        art, result = fit_model(source, backend=backend, val_fraction=val_fraction, seed=seed, verbose=not quiet, **params)
    except (FileNotFoundError, StoreError, BackendError, ValueError, TypeError) as exc:
        fail(str(exc))
    art.save(out)
    console.print(result.summary())
    console.print(f"model written to [bold]{out}[/]")


def register(app: typer.Typer) -> None:
    app.command()(info)
    app.command()(backends)
    app.command()(train)
