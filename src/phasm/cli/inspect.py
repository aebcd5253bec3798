"""``phasm inspect``: discover which data a function reads and writes, and propose its spec."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from phasm.cli.common import check_range, err_console, fail


def inspect_command(
    target: Optional[str] = typer.Argument(
        None, help="module:function or file.py:function. Always named by you: phasm never imports a name read "
                   "from a store."),
    example: list[str] = typer.Option(
        [], "--example", "-e",
        help="Python expression for one call's arguments: a tuple (positional), dict(args=..., kwargs=...), "
             "or a single value. Module globals, np and math are in scope. Repeatable."),
    from_store: Optional[Path] = typer.Option(
        None, "--from-store", help="Replay inputs captured in this store (into the TARGET you name)."),
    rows: int = typer.Option(3, help="With --from-store: how many captured calls to replay."),
    depth: int = typer.Option(2, help="How many levels of called functions static analysis follows."),
    purity: bool = typer.Option(True, "--purity/--no-purity", help="Run twice more to detect nondeterminism."),
    batched: bool = typer.Option(False, "--batched", help="The function is vectorised over a leading batch axis."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of the report."),
) -> None:
    """Trace and statically analyse a function; print its interface and a proposed @phasm.surrogate spec."""
    from phasm.discover import inspect_function, render_json, render_text
    from phasm.discover.examples import examples_from_store, load_target, namespace_for, parse_example
    from phasm.errors import TargetError

    check_range("--rows", rows, low=1)
    check_range("--depth", depth, low=0)
    calls = []
    if from_store is not None:
        recorded, stored = examples_from_store(from_store, rows)
        if not target:
            # The store is data: the function it names is shown, never imported or called.
            module, _, name = recorded.rpartition(".")
            python_name = bool(module) and all(p.isidentifier() for p in recorded.split("."))
            hint = (f"name it yourself, e.g. `phasm inspect {module}:{name} --from-store {from_store}`" if python_name
                    else "name the function yourself as module:function")
            fail(f"{from_store} records calls of {recorded!r}; phasm does not import a function named in a file: {hint}")
        calls.extend(stored)
    if not target:
        raise TargetError("name the function to inspect (module:function or file.py:function)")
    fn = load_target(target)
    if from_store is not None and f"{fn.__module__}.{fn.__qualname__}" != recorded:
        err_console.print(f"warning: {escape(str(from_store))} records calls of {escape(recorded)!r}; replaying them "
                          f"into {escape(fn.__module__)}.{escape(fn.__qualname__)}", soft_wrap=True, highlight=False)
    ns = namespace_for(fn)
    calls.extend(parse_example(e, ns) for e in example)
    if not calls:
        raise TargetError("give at least one --example EXPR (or --from-store STORE) to run the function on")
    result = inspect_function(fn, calls, depth=depth, purity=purity, batched=batched)
    if as_json:
        print(render_json(result))
    else:
        print(render_text(result))
    if result.errors:
        raise typer.Exit(code=2)


def register(app: typer.Typer) -> None:
    app.command(name="inspect")(inspect_command)
