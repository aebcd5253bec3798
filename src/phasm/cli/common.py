"""What every command module shares: the console, a one-line error exit, ``KEY=VALUE`` parameters."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import typer
from rich.console import Console

console = Console()


def fail(message: str) -> NoReturn:
    """Print ``error: message`` and exit with status 1."""
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)  # one line, however long
    raise typer.Exit(code=1)


def parse_params(param: list[str]) -> dict[str, Any]:
    """``["k=5", "member=\\"torch\\"", "hidden=[64,64]"]`` -> backend parameters (JSON values, else strings)."""
    out: dict[str, Any] = {}
    for p in param:
        key, sep, value = p.partition("=")
        if not sep or not key:
            fail(f"--param expects KEY=VALUE, got {p!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
