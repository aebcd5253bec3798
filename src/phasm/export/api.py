"""``export_model``: a model folder (or a loaded model) and its gate -> C, C++ or Fortran source.

Example
-------
>>> import numpy as np, phasm
>>> from phasm.train import fit_model
>>> spec = phasm.Spec.from_declarations("m.f", {"x": phasm.Scalar()}, {"y": phasm.Scalar()})
>>> X = np.linspace(0, 1, 50)[:, None]
>>> art, _ = fit_model((X, 3 * X ** 2), spec, backend="ridge", degree=2)
>>> [p.name for p in export_model(art, "fortran", "sq", "native")]
['sq.h', 'sq_capi.c', 'sq_mod.f90']
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from phasm.errors import ExportError
from phasm.export.c_header import generate_header, header_info
from phasm.export.cformat import check_prefix
from phasm.export.gateplan import gate_plan
from phasm.export.plan import model_plan
from phasm.export.wrappers import capi_source, cpp_header, fortran_module

LANGS = ("c", "cpp", "fortran")


def load_model(model: Any) -> tuple[Any, str, dict[str, str]]:
    """``(artefact, phasm version that wrote it, weights digests)`` from a folder path or a loaded artefact."""
    from phasm.train.artefact import ModelArtefact

    if isinstance(model, ModelArtefact):
        return model, "", {}
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        art = ModelArtefact.load(path)  # verifies the spec hash and every weights file's digest
        meta = ModelArtefact.read_metadata(path)
        return art, str(meta.get("phasm_version", "")), {str(k): str(v) for k, v in meta["files"].items()}
    raise ExportError(f"model: expected a model folder path or a phasm.train.ModelArtefact, got {type(model).__name__}")


def generate(model: Any, prefix: str, *, gate: Any = None) -> dict[str, str]:
    """Every generated file's name and text (``<p>.h``, ``<p>.hpp``, ``<p>_capi.c``, ``<p>_mod.f90``),
    without writing anything.  ``gate``: a gate JSON record to use instead of the model's own."""
    from phasm import __version__

    p = check_prefix(prefix)
    art, version, files = load_model(model)
    mplan = model_plan(art)
    record = gate if gate is not None else art.sections.get("gate")
    gplan = gate_plan(record, n_in=mplan.n_in, n_out=mplan.n_out, spec=art.spec, ensemble=mplan.ensemble)
    info = header_info(art, version, files)
    return {
        f"{p}.h": generate_header(mplan, gplan, info, p),
        f"{p}.hpp": cpp_header(p, art.spec.function, __version__),
        f"{p}_capi.c": capi_source(p),
        f"{p}_mod.f90": fortran_module(p, mplan.n_in, mplan.n_out, art.spec.function, __version__),
    }


def export_model(model: Any, lang: str, prefix: str, out: str | os.PathLike[str], *, gate: Any = None) -> list[Path]:
    """Write the native source of ``model`` and its gate into folder ``out``; returns the files written.

    ``lang``: ``"c"`` (``<prefix>.h``), ``"cpp"`` (adds ``<prefix>.hpp``) or ``"fortran"`` (adds
    ``<prefix>_capi.c`` and ``<prefix>_mod.f90``).  ``model``: a model folder or a loaded
    :class:`~phasm.train.ModelArtefact` (``fn.model``).  Raises :class:`~phasm.errors.ExportError`
    naming what is not exportable.
    """
    if lang not in LANGS:
        raise ExportError(f"lang: expected one of {', '.join(LANGS)}, got {lang!r}")
    texts = generate(model, prefix, gate=gate)
    p = prefix
    names = {"c": [f"{p}.h"], "cpp": [f"{p}.h", f"{p}.hpp"], "fortran": [f"{p}.h", f"{p}_capi.c", f"{p}_mod.f90"]}[lang]
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"out: {folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        path = folder / name
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(texts[name].encode("ascii"))
        tmp.replace(path)
        written.append(path)
    return written
