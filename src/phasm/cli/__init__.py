"""The ``phasm`` command: thin typer commands that call the library and print.

Each command group lives in its own module with a ``register(app)``
function; adding a command touches one module and the list below.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="phasm",
    help="Replace slow scientific functions with trained surrogate models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules, each with register(app). Imported when the CLI starts, not by `import phasm`.
COMMAND_MODULES = [
    "phasm.cli.core",
    "phasm.cli.inspect",
    "phasm.cli.profile",
    "phasm.cli.gate",
    "phasm.cli.store",
]


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_all()


def main() -> None:
    """Console-script entry point."""
    app()
