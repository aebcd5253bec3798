"""Loading ``torch.export`` programs (``.pt2``) as data: nothing in the file is unpickled, imported or run.

:func:`load_pt2` reads the file once and hands torch a rebuilt archive holding only what
:func:`~phasm.backends.pt2_archive.clean_pt2` checked (no pickles, no compiled code, no Python
source, no names beyond aten operators), then checks the loaded graph again
(:func:`~phasm.backends.pt2_archive.check_program`).  Plain exported networks (what
``torch.export.export`` writes for ordinary modules) load fine; tensor subclasses, custom objects,
higher-order operators (``torch.cond``...) and AOTInductor packages are refused with the reason.
:func:`export_module` refuses at save time a module that would not load back this way.

Example
-------
>>> prog = load_pt2("model.pt2")                                  # doctest: +SKIP
>>> prog.module(check_guards=False)(torch.zeros(2, 5))            # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from phasm.errors import BackendError
from phasm.backends.pt2_archive import check_program, clean_pt2


def load_pt2(path: str | os.PathLike[str]) -> Any:
    """Load the ``ExportedProgram`` in ``path`` from a checked rebuild of the archive (see the module doc)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BackendError(f"exported model {path} does not exist") from None
    except OSError as exc:
        raise BackendError(f"exported model {path} cannot be read: {exc}") from None
    clean = clean_pt2(data, str(path))
    try:
        prog = torch.export.load(io.BytesIO(clean))
    except Exception as exc:  # torch's deserialiser raises many types on a malformed program
        raise BackendError(f"{path}: torch.export.load failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(prog, torch.export.ExportedProgram):
        raise BackendError(f"{path}: does not hold an exported program")
    check_program(prog, str(path))
    return prog


def program_widths(prog: Any, path: Any) -> tuple[int, int]:
    """``(n_in, n_out)`` of a program taking one ``(batch, n_in)`` float tensor; checked by a dry run."""
    user_inputs = list(prog.graph_signature.user_inputs)
    if len(user_inputs) != 1:
        raise BackendError(f"{path}: the exported model must take one input tensor (batch, features); it takes {len(user_inputs)}: {user_inputs}")
    node = next(n for n in prog.graph.nodes if n.op == "placeholder" and n.name == user_inputs[0])
    val = node.meta.get("val")
    shape = tuple(getattr(val, "shape", ()))
    if len(shape) != 2 or not isinstance(shape[1], int):
        raise BackendError(f"{path}: the exported model's input must be (batch, features) with fixed features; it is {shape}")
    n_in = int(shape[1])
    mod = prog.module(check_guards=False)  # no generated guard code: phasm checks the input shape itself
    try:
        with torch.inference_mode():
            out = mod(torch.zeros(2, n_in))
    except Exception as exc:
        raise BackendError(
            f"{path}: the exported model does not run on a batch of 2 rows; export it with a dynamic batch "
            f"dimension (dynamic_shapes={{'x': {{0: torch.export.Dim('batch')}}}}): {exc}"
        ) from None
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        raise BackendError(f"{path}: the exported model must return one (batch, outputs) tensor; got {type(out).__name__} "
                           f"{tuple(getattr(out, 'shape', ()))}")
    return n_in, int(out.shape[1])


def export_module(module: torch.nn.Module, n_in: int, path: Path) -> None:
    """Export ``module`` (on CPU, eval mode) with a dynamic batch axis and save it to ``path``."""
    example = (torch.zeros(2, n_in),)
    batch = torch.export.Dim("batch", min=1)
    try:
        prog = torch.export.export(module, example, dynamic_shapes=({0: batch},))
    except Exception as exc:
        raise BackendError(
            f"torch: cannot save the custom module {type(module).__name__}: torch.export failed ({exc}). "
            "Make its forward exportable (no data-dependent Python control flow), or save its state_dict yourself."
        ) from None
    torch.export.save(prog, str(path))
    try:
        clean_pt2(path.read_bytes(), str(path))
    except BackendError as exc:
        path.unlink()
        raise BackendError(f"torch: the custom module {type(module).__name__} cannot be saved as a plain program "
                           f"that phasm loads back: {exc}") from None
