"""Deploy a surrogate and its trust gate into C, C++ and Fortran programs as plain source code.

``export_model(model, lang, prefix, out)`` (CLI: ``phasm export MODEL --lang c|cpp|fortran
--prefix NAME --out DIR``) writes a header-only C99 file ``NAME.h`` holding the model's weights,
its standardisation and its calibrated gate, with ``NAME_predict`` / ``NAME_predict_batch`` /
``NAME_model``; ``cpp`` adds the class ``phasm::NAME`` (``NAME.hpp``), ``fortran`` a module with
``bind(C)`` interfaces (``NAME_mod.f90``, with ``NAME_capi.c``).  See ``docs/native.md``.

Exportable: the torch MLP (with or without its skip path), ensembles of them, ridge/polynomial
models and ensembles of those, with no gate, a domain gate or a conformal gate (any score but a
Gaussian process' std).  Anything else raises :class:`~phasm.errors.ExportError` naming it.
"""

from phasm.errors import ExportError
from phasm.export.api import LANGS, export_model, generate, load_model
from phasm.export.check import CheckResult, compare, sample_rows
from phasm.export.native import NativeModel, compile_shared, find_compiler

__all__ = [
    "CheckResult", "ExportError", "LANGS", "NativeModel", "compare", "compile_shared", "export_model", "find_compiler",
    "generate", "load_model", "sample_rows",
]
