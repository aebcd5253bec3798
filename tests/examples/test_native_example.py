"""examples/native, reduced: the tree pricer is right, and capture -> train -> export -> C++ / Fortran programs run."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

NATIVE_DIR = Path(__file__).resolve().parents[2] / "examples" / "native"


@pytest.fixture()
def pricer(monkeypatch):
    monkeypatch.syspath_prepend(str(NATIVE_DIR))
    sys.modules.pop("pricer", None)
    yield importlib.import_module("pricer")
    sys.modules.pop("pricer", None)


def test_tree_converges_to_black_scholes(pricer) -> None:
    from math import erf, exp, log, sqrt

    def bs(S, K, r, v, T):
        N = lambda x: 0.5 * (1 + erf(x / sqrt(2)))  # noqa: E731
        d1 = (log(S / K) + (r + v * v / 2) * T) / (v * sqrt(T))
        return S * N(d1) - K * exp(-r * T) * N(d1 - v * sqrt(T))

    rows = np.random.default_rng(0).uniform(pricer.LOW, pricer.HIGH, (50, 5))
    tree = pricer.crr_call(*rows.T)
    exact = np.array([bs(*row) for row in rows])
    assert np.abs(tree - exact).max() < 0.05  # a 200-step tree is within a few cents


def test_capture_train_export_and_run_the_programs(pricer, tmp_path) -> None:
    pytest.importorskip("torch")
    assert pricer.main(["--out", str(tmp_path), "--captures", "3000", "--epochs", "5"]) == 0
    assert {"pricer.h", "pricer.hpp", "pricer_mod.f90", "pricer_capi.c"} <= {p.name for p in tmp_path.iterdir()}
    cxx = next((c for c in ("c++", "g++", "clang++") if shutil.which(c)), None)
    if cxx is None:
        pytest.skip("no C++ compiler on this machine: the example's program cannot be built here")
    exe = tmp_path / "pricer_cpp"
    subprocess.run([cxx, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-O2", f"-I{tmp_path}", str(NATIVE_DIR / "pricer.cpp"),
                    "-o", str(exe), "-lm"], check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe), "2000"], check=True, capture_output=True, text=True).stdout
    assert "C++: 2000 options priced" in out and "NaN input trusted: no" in out and "S=300 (outside the captures) trusted: no" in out
    fc, cc = shutil.which("gfortran"), shutil.which("cc") or shutil.which("gcc")
    if fc is None or cc is None:
        return  # the Fortran part needs gfortran (the Makefile says so and skips it)
    build = tmp_path / "f"
    build.mkdir()
    run = lambda *cmd: subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, cwd=build)  # noqa: E731
    run(cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", f"-I{tmp_path}", "-c", tmp_path / "pricer_capi.c", "-o", "capi.o")
    run(fc, "-std=f2008", "-Wall", "-Wextra", "-Werror", "-O2", "-c", tmp_path / "pricer_mod.f90", "-o", "mod.o")
    run(fc, "-std=f2008", "-Wall", "-Wextra", "-O2", "-c", NATIVE_DIR / "pricer.f90", "-o", "main.o")
    run(fc, "main.o", "mod.o", "capi.o", "-o", "pricer_f", "-lm")
    out = run(build / "pricer_f").stdout
    assert "Fortran: 20000 options priced" in out and "answered by the model" in out
