"""Compile an exported header with the system's C compiler and call it from Python through ``ctypes``.

Used by ``phasm export --check``, the tests and ``benchmarks/native.py``: the generated code is
checked the way a user's program would run it, compiled by a real compiler.

Example
-------
>>> cc = find_compiler()                                                     # doctest: +SKIP
>>> lib = NativeModel(compile_shared("native", "price", cc=cc), "price")     # doctest: +SKIP
>>> Y, accepted = lib.predict(X)                                             # doctest: +SKIP
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from phasm.errors import ExportError
from phasm.export.wrappers import capi_source

WARNINGS = ("-Wall", "-Wextra")


def find_compiler(names: tuple[str, ...] = ("cc", "gcc", "clang")) -> str | None:
    """The C compiler to use: ``$CC`` when set, else the first of ``names`` on the ``PATH`` (``None``: none)."""
    env = os.environ.get("CC")
    if env and shutil.which(env.split()[0]):
        return env
    for name in names:
        if shutil.which(name):
            return name
    return None


def compile_shared(folder: str | os.PathLike[str], prefix: str, *, cc: str | None = None,
                   flags: tuple[str, ...] = ("-O2",), out: str | os.PathLike[str] | None = None,
                   werror: bool = True) -> Path:
    """Compile ``folder/<prefix>.h`` into a shared library with external symbols; returns its path.

    Compiled as C99 with ``-Wall -Wextra`` (and ``-Werror`` unless ``werror=False``): a warning in
    generated code is a bug.  Raises :class:`ExportError` with the compiler's first lines on failure.
    """
    cc = cc or find_compiler()
    if cc is None:
        raise ExportError("no C compiler found (set CC, or install gcc or clang)")
    folder = Path(folder)
    header = folder / f"{prefix}.h"
    if not header.is_file():
        raise ExportError(f"{header}: no such header; export the model first")
    build = Path(tempfile.mkdtemp(prefix="phasm-native-"))
    src = build / f"{prefix}_capi.c"
    src.write_text(capi_source(prefix))
    lib = Path(out) if out is not None else build / f"lib{prefix}.so"
    cmd = [*cc.split(), "-std=c99", *WARNINGS, *(["-Werror"] if werror else []), *flags, "-fPIC", "-shared",
           f"-I{folder.resolve()}", str(src), "-o", str(lib), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[:12])
        raise ExportError(f"compiling {header} failed ({' '.join(cmd[:3])} ...):\n{detail}")
    return lib


class NativeModel:
    """A compiled exported model, called through ``ctypes`` with numpy arrays."""

    def __init__(self, library: str | os.PathLike[str], prefix: str) -> None:
        self._lib = ctypes.CDLL(str(library))
        dbl = ctypes.POINTER(ctypes.c_double)
        self._predict = getattr(self._lib, f"{prefix}_predict")
        self._predict.argtypes, self._predict.restype = [dbl, dbl], ctypes.c_int
        self._model = getattr(self._lib, f"{prefix}_model")
        self._model.argtypes, self._model.restype = [dbl, dbl], ctypes.c_int
        self._batch = getattr(self._lib, f"{prefix}_predict_batch")
        self._batch.argtypes = [ctypes.c_size_t, dbl, dbl, ctypes.POINTER(ctypes.c_ubyte)]
        self._batch.restype = ctypes.c_size_t
        self.prefix = prefix

    @staticmethod
    def _rows(X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, np.float64)
        if X.ndim != 2:
            raise ValueError(f"X: expected a (n, n_in) matrix, got shape {X.shape}")
        return X

    def predict(self, X: np.ndarray, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        """``<prefix>_predict_batch`` over rows ``X``: answers ``(n, n_out)`` (NaN where rejected) and the accepted mask."""
        X = self._rows(X)
        Y = np.full((len(X), n_out), np.nan)
        acc = np.zeros(len(X), np.uint8)
        dbl = ctypes.POINTER(ctypes.c_double)
        count = self._batch(len(X), X.ctypes.data_as(dbl), Y.ctypes.data_as(dbl),
                            acc.ctypes.data_as(ctypes.POINTER(ctypes.c_ubyte)))
        accepted = acc.astype(bool)
        if int(count) != int(accepted.sum()):
            raise ExportError(f"{self.prefix}_predict_batch returned {count}, but {int(accepted.sum())} rows are marked accepted")
        Y[~accepted] = np.nan
        return Y, accepted

    def predict_one(self, x: np.ndarray, n_out: int) -> tuple[np.ndarray, bool]:
        """``<prefix>_predict`` on one row."""
        x = np.ascontiguousarray(x, np.float64).reshape(-1)
        y = np.full(n_out, np.nan)
        dbl = ctypes.POINTER(ctypes.c_double)
        ok = self._predict(x.ctypes.data_as(dbl), y.ctypes.data_as(dbl))
        return y, bool(ok)

    def model(self, X: np.ndarray, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        """``<prefix>_model`` on every row: answers ``(n, n_out)`` and whether each is finite."""
        X = self._rows(X)
        Y = np.empty((len(X), n_out))
        ok = np.zeros(len(X), bool)
        dbl = ctypes.POINTER(ctypes.c_double)
        for i in range(len(X)):
            ok[i] = bool(self._model(X[i].ctypes.data_as(dbl), Y[i].ctypes.data_as(dbl)))
        return Y, ok
