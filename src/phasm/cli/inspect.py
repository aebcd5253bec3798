"""``phasm inspect``: discover which data a function reads and writes, and propose its spec."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def inspect_command(
    target: Optional[str] = typer.Argument(
        None, help="module:function or file.py:function (with --from-store: defaults to the store's function)."),
    example: list[str] = typer.Option(
        [], "--example", "-e",
        help="Python expression for one call's arguments: a tuple (positional), dict(args=..., kwargs=...), "
             "or a single value. Module globals, np and math are in scope. Repeatable."),
    from_store: Optional[Path] = typer.Option(None, "--from-store", help="Replay inputs captured in this store."),
    rows: int = typer.Option(3, help="With --from-store: how many captured calls to replay."),
    depth: int = typer.Option(2, help="How many levels of called functions static analysis follows."),
    purity: bool = typer.Option(True, "--purity/--no-purity", help="Run twice more to detect nondeterminism."),
    batched: bool = typer.Option(False, "--batched", help="The function is vectorised over a leading batch axis."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of the report."),
) -> None:
    """Trace and statically analyse a function; print its interface and a proposed @phasm.surrogate spec."""
    from phasm.discover import inspect_function, render_json, render_text
    from phasm.discover.examples import (TargetError, examples_from_store, load_from_function_name, load_target,
                                         namespace_for, parse_example)

    try:
        calls = []
        fn = load_target(target) if target else None
        if from_store is not None:
            name, stored = examples_from_store(from_store, rows)
            calls.extend(stored)
            if fn is None:
                fn = load_from_function_name(name)
        if fn is None:
            raise TargetError("name the function to inspect (module:function), or give --from-store")
        ns = namespace_for(fn)
        calls.extend(parse_example(e, ns) for e in example)
        if not calls:
            raise TargetError("give at least one --example EXPR (or --from-store STORE) to run the function on")
        result = inspect_function(fn, calls, depth=depth, purity=purity, batched=batched)
    except (TargetError, FileNotFoundError, TypeError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    if as_json:
        print(render_json(result))
    else:
        print(render_text(result))
    if result.errors:
        raise typer.Exit(code=2)


def register(app: typer.Typer) -> None:
    app.command(name="inspect")(inspect_command)
