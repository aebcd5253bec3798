"""``phasm report TARGET... --out report.html``: one self-contained HTML page over models, stores, profiles, benches."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from phasm.cli.common import console, fail
from phasm.errors import PhasmError


def report(
    targets: List[Path] = typer.Argument(..., help="Model folders, capture stores, 'phasm profile --out' folders and "
                                         "'phasm bench --out' folders, in any order."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML file to write."),
    title: Optional[str] = typer.Option(None, "--title", help="Title of the page (default: the surrogates' names)."),
    max_rows: int = typer.Option(20000, "--max-rows", help="Rows of each store read for the plots (evenly spaced "
                                 "runs when it holds more); statistics cover every row."),
) -> None:
    """Write one HTML file (no network, readable without JavaScript): spec, data, training, accuracy, the trust
    gate and production rows of each surrogate; flame graphs and candidates of each profile; each cost model."""
    from phasm.report.build import build_report

    try:
        path = build_report(targets, out, title=title, max_rows=max_rows)
    except (PhasmError, OSError) as exc:
        fail(str(exc))
    console.print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


def register(app: typer.Typer) -> None:
    app.command()(report)
