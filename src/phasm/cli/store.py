"""Store commands: ``repair``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from phasm.cli.common import console, fail


def repair(
    store: Path = typer.Argument(..., help="The capture store (main file path; its shards are included)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would be kept and dropped; write nothing."),
    no_backup: bool = typer.Option(False, "--no-backup", help="Delete each damaged original once repaired."),
) -> None:
    """Keep exactly the rows of a store that verify (after a truncation, damage, a crash or a full disk)."""
    from phasm.errors import StoreError
    from phasm.store import repair as repair_store

    try:
        report = repair_store(store, dry_run=dry_run, keep_backup=not no_backup)
    except (FileNotFoundError, StoreError) as exc:
        fail(str(exc))
    t = Table(title=f"repair of {store}" + (" (dry run)" if dry_run else ""))
    for col in ("file", "action", "committed", "kept", "detail"):
        t.add_column(col)
    for f in report.files:
        detail = f.detail + (f" (original kept as {f.backup.name})" if f.backup is not None else "")
        t.add_row(f.path.name, f.action, str(f.committed), str(f.kept), detail)
    console.print(t)
    console.print(report.summary(), soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(repair)
