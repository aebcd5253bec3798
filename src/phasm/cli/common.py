"""What every command module shares: the console, one-line errors, ``--debug``, ``KEY=VALUE`` parameters.

Every error the CLI prints is one line on stderr (``error: ...``) with exit status 1.  Commands are
wrapped by :func:`one_line_errors`, which turns phasm's own errors (:class:`~phasm.errors.PhasmError`)
and OS errors into that line; anything else is a bug and shows as a traceback.  ``phasm --debug``
(or ``PHASM_DEBUG=1``) shows the traceback of every error.
"""

from __future__ import annotations

import functools
import inspect
import json
from typing import Any, Callable, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from phasm.errors import BackendError, PhasmError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


class Settings:
    """Process-wide CLI settings, set by the ``phasm`` callback on each invocation."""

    debug = False


def print_spec(spec: Any) -> None:
    """A spec as a table: variable, direction, shape, dtype, where it is read or written."""
    from rich.table import Table

    table = Table(title=f"spec of {spec.function} (hash {spec.hash}{', batched' if spec.batched else ''})")
    for col in ("variable", "direction", "shape", "dtype", "where"):
        table.add_column(col)
    for v in spec.variables:
        table.add_row(v.name, v.direction, "scalar" if not v.shape else "x".join(map(str, v.shape)), str(v.dtype),
                      v.where)
    console.print(table)


def one_line(message: str) -> str:
    """``message`` with every run of whitespace (newlines included) as one space."""
    return " ".join(str(message).split())


def fail(message: str) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with status 1."""
    err_console.print(f"[bold red]error:[/] {escape(one_line(message))}", soft_wrap=True, highlight=False)
    raise typer.Exit(code=1)


def one_line_errors(command: F) -> F:
    """Wrap a command: phasm errors and OS errors become one ``error:`` line (the traceback with ``--debug``)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (PhasmError, OSError) as exc:
            if Settings.debug:
                raise
            fail(str(exc) or type(exc).__name__)

    return run  # type: ignore[return-value]


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


def check_backend_params(backend: str, params: dict[str, Any]) -> None:
    """Refuse parameters the backend does not take or cannot use, naming the parameter (before any training)."""
    from phasm.backends import get_backend

    cls = get_backend(backend)
    sig = inspect.signature(cls.__init__)
    takes = [n for n, p in sig.parameters.items() if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
        for key in params:
            if key not in takes:
                fail(f"--param {key}: backend {backend!r} has no parameter {key!r}; it takes {', '.join(takes)}")
    for key, value in params.items():
        # The constructor checks the user's values; a TypeError or ValueError from it is about that value
        # (e.g. int("x")), so it is reported against the parameter, not as a bug.
        try:
            cls(**{key: value})
        except (BackendError, TypeError, ValueError) as exc:
            fail(f"--param {key}={json.dumps(value)}: {exc}")
    try:
        cls(**params)
    except (BackendError, TypeError, ValueError) as exc:
        fail(f"--param {' '.join(f'{k}={json.dumps(v)}' for k, v in params.items())}: {exc}")


def check_range(option: str, value: float | None, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> None:
    """Refuse an option value outside ``[low, high]`` (open ends as asked), naming the option."""
    if value is None:
        return
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high or value != value:
        lo = "" if low is None else f"{'(' if low_open else '['}{low:g}"
        hi = "" if high is None else f"{high:g}{')' if high_open else ']'}"
        where = f"within {lo}, {hi}" if low is not None and high is not None else (
            f"{'>' if low_open else '>='} {low:g}" if low is not None else f"{'<' if high_open else '<='} {high:g}")
        fail(f"{option} must be {where}, got {value:g}")


def check_model_destination(option: str, path: Any) -> None:
    """Refuse, before any work, a model folder path that cannot be written (a file, a non-model folder)."""
    from phasm.train.model_folder import check_destination

    try:
        check_destination(path)
    except PhasmError as exc:
        fail(f"{option}: {exc}")
