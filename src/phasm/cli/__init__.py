"""The ``phasm`` command: thin typer commands that call the library and print.

Each command group lives in its own module with a ``register(app)``
function; adding a command touches one module and the list below.  Every
registered command is wrapped so that an error prints as one line
(:func:`phasm.cli.common.one_line_errors`); ``phasm --debug`` shows tracebacks.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperGroup

from phasm.cli.common import Settings, one_line_errors


class OneLineUsageErrors(TyperGroup):
    """Usage errors (an unknown option, a bad value, a missing argument) print as one line too."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except typer.TyperException as exc:
            _drop_context(exc)
            raise

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except typer.TyperException as exc:
            _drop_context(exc)
            raise


def _drop_context(exc: Exception) -> None:
    """A usage error without its context prints only ``Error: <message>`` (no usage lines, no hint)."""
    if hasattr(exc, "ctx"):
        exc.ctx = None


app = typer.Typer(
    name="phasm",
    help="Replace slow scientific functions with trained surrogate models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # errors as plain one-line text, not rich panels
    cls=OneLineUsageErrors,
)


def _print_version(value: bool) -> None:
    if value:
        from phasm import __version__

        typer.echo(f"phasm {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", envvar="PHASM_DEBUG", help="Show the full traceback of an error."),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Replace slow scientific functions with trained surrogate models."""
    Settings.debug = debug


# Command modules, each with register(app). Imported when the CLI starts, not by `import phasm`.
COMMAND_MODULES = [
    "phasm.cli.core",
    "phasm.cli.inspect",
    "phasm.cli.profile",
    "phasm.cli.gate",
    "phasm.cli.sample",
    "phasm.cli.export",
    "phasm.cli.report",
    "phasm.cli.store",
]


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
    for command in app.registered_commands:
        if command.callback is not None and not getattr(command.callback, "__wrapped__", None):
            command.callback = one_line_errors(command.callback)


_register_all()


def main() -> None:
    """Console-script entry point."""
    app()
