"""Helpers of the export tests: compilers present, exporting + compiling + loading, a small data set."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

import phasm
from phasm.export import NativeModel, compile_shared, export_model, find_compiler


def compilers() -> list[str]:
    """Every C compiler here (gcc and clang when both are installed)."""
    found = [c for c in ("gcc", "clang") if shutil.which(c)]
    return found or ([c] if (c := find_compiler()) else [])


# Stricter than the promise (-Wall -Wextra): the generated code is clean under these too.
STRICT = ("-O2", "-pedantic", "-Wconversion", "-Wshadow", "-Wdouble-promotion")


def build(model, cc: str, prefix: str = "m", out: str | Path = "native", flags: tuple[str, ...] = STRICT, **kw) -> NativeModel:
    """Export ``model`` as C, compile it warning-free (-Werror), load it through ctypes."""
    export_model(model, "c", prefix, out, **kw)
    lib = compile_shared(out, prefix, cc=cc, flags=flags, out=Path(out) / f"lib{prefix}_{Path(cc).name}.so")
    return NativeModel(lib, prefix)


SPEC2 = phasm.Spec.from_declarations("t.expcos", {"a": phasm.Scalar(), "b": phasm.Scalar()}, {"y": phasm.Scalar()})


def expcos(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    A = np.random.default_rng(seed).uniform(0, 1, (n, 2))
    return A, (np.exp(A[:, 0]) * np.cos(A[:, 1]) + 1)[:, None]
