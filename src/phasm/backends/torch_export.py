"""Loading ``torch.export`` programs (``.pt2``) without unpickling arbitrary objects.

``torch.export.load`` falls back to pickle for tensor subclasses, custom and
opaque objects and legacy archives.  :func:`load_pt2` first reads the
archive's JSON payload configs and refuses any entry that would be
unpickled, then loads with ``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` set, so every
``torch.load`` inside is ``weights_only``.  Plain exported networks (what
``torch.export.export`` writes for ordinary modules) load fine.

Example
-------
>>> prog = load_pt2("model.pt2")          # doctest: +SKIP
>>> prog.module()(torch.zeros(2, 5))      # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import threading
import zipfile
from pathlib import Path
from typing import Any

import torch

from phasm.backends.base import BackendError

_ENV_LOCK = threading.Lock()
_REFUSED_PREFIXES = ("custom_obj", "opaque_obj")


def _check_archive(path: Path) -> None:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BackendError(f"{path}: not a torch.export .pt2 archive ({exc})") from None
    with zf:
        names = zf.namelist()
        bad = zf.testzip()
        if bad is not None:
            raise BackendError(f"{path}: archive member {bad} is corrupted (CRC mismatch)")
        if not any(n.endswith("models/model.json") for n in names):
            raise BackendError(f"{path}: no exported program 'model' in the archive; save it with torch.export.save")
        for n in names:
            if "/aotinductor/" in n or n.startswith("aotinductor/"):
                raise BackendError(f"{path}: AOTInductor packages hold compiled code; phasm loads only plain exported programs")
            if (("/data/weights/" in n or "/data/constants/" in n) and n.endswith(".pt")):
                raise BackendError(f"{path}: legacy pickled weights ({n}); re-save with a current torch.export.save")
            if n.endswith("_weights_config.json") or n.endswith("_constants_config.json"):
                cfg = json.loads(zf.read(n)).get("config", {})
                for fqn, meta in cfg.items():
                    if meta.get("use_pickle"):
                        raise BackendError(f"{path}: entry {fqn!r} is stored with pickle (a tensor subclass); refusing to load it")
                    if str(meta.get("path_name", "")).startswith(_REFUSED_PREFIXES):
                        raise BackendError(f"{path}: entry {fqn!r} is a pickled custom object; refusing to load it")


def load_pt2(path: str | os.PathLike[str]) -> Any:
    """Load an ``ExportedProgram`` from ``path`` after checking nothing in it is unpickled."""
    path = Path(path)
    if not path.is_file():
        raise BackendError(f"exported model {path} does not exist")
    _check_archive(path)
    with _ENV_LOCK:
        old = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
        os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
        try:
            prog = torch.export.load(str(path))
        except Exception as exc:
            raise BackendError(f"{path}: torch.export.load failed: {exc}") from None
        finally:
            if old is None:
                del os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"]
            else:
                os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = old
    if not isinstance(prog, torch.export.ExportedProgram):
        raise BackendError(f"{path}: does not hold an exported program")
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
    mod = prog.module()
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
