"""``phasm export``: a model folder and its trust gate as C, C++ or Fortran source.

Example
-------
    phasm export models/price --lang cpp --prefix price --out native/
    phasm export models/price --lang c --prefix price --out native/ --check 10000
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from phasm.cli.common import console, fail


def export(
    model: Path = typer.Argument(..., help="Model folder (phasm.json + weights; its gate is exported with it)."),
    lang: str = typer.Option(..., "--lang", "-l", help="c (NAME.h), cpp (adds NAME.hpp) or fortran (adds NAME_mod.f90, NAME_capi.c)."),
    prefix: str = typer.Option(..., "--prefix", "-p", help="Name of the generated files and functions (a C identifier)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the files into."),
    check: int = typer.Option(0, help="Compile the header with the system C compiler and compare it with Python on N random in-range rows."),
    cc: Optional[str] = typer.Option(None, help="C compiler for --check (default: $CC, cc, gcc or clang)."),
) -> None:
    """Write a model and its calibrated gate as dependency-free C99 (+ C++17 class / Fortran 2008 module)."""
    from phasm.errors import PhasmError
    from phasm.export import export_model

    try:
        written = export_model(model, lang, prefix, out)
    except PhasmError as exc:
        fail(str(exc))
    for path in written:
        console.print(f"wrote [bold]{path}[/] ({path.stat().st_size:,} bytes)")
    if check:
        _check(model, out, prefix, check, cc)


def _check(model: Path, out: Path, prefix: str, rows: int, cc: str | None) -> None:
    from phasm.errors import PhasmError
    from phasm.export import NativeModel, compare, compile_shared, find_compiler, load_model, sample_rows

    compiler = cc or find_compiler()
    if compiler is None:
        fail("--check: no C compiler found (set CC, or install gcc or clang)")
    try:
        lib = compile_shared(out, prefix, cc=compiler)
        art = load_model(model)[0]
        result = compare(art, NativeModel(lib, prefix), sample_rows(art, rows))
    except PhasmError as exc:
        fail(str(exc))
    console.print(f"compiled with {compiler} -std=c99 -Wall -Wextra -Werror -O2: no warnings")
    console.print(str(result), soft_wrap=True, markup=False)


def register(app: typer.Typer) -> None:
    app.command()(export)
