"""The C++17 class and the Fortran 2008 module: compiled warning-free, run as a program would, same answers as C."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from export_helpers import SPEC2, compilers, expcos

import phasm
from phasm.export import NativeModel, compile_shared, export_model
from phasm.gate import train_calibrated

WARN = ["-Wall", "-Wextra", "-Werror"]
CXXS = [c for c in ("g++", "clang++") if shutil.which(c)]

CPP_MAIN = r"""
#include "expcos.hpp"
#include <cmath>
#include <cstdio>

int main() {
    phasm::expcos model;
    int originals = 0;
    auto original = [&originals](const double *x, double *y) { ++originals; y[0] = std::exp(x[0]) * std::cos(x[1]) + 1.0; };
    double in[phasm::expcos::n_in], out[phasm::expcos::n_out];
    for (int i = 0; i < 1000; ++i) {
        in[0] = (i % 37) / 36.0; in[1] = (i % 23) / 22.0;
        model.call(in, out, original);
        std::printf("%.17g\n", out[0]);
    }
    in[0] = NAN;
    model.call(in, out, original);
    std::array<double, 2> a{{5.0, 5.0}};
    std::array<double, 1> b{};
    model.call(a, b, original);
    double rows[6] = {0.5, 0.5, 0.2, 0.9, 3.0, 3.0}, outs[3];
    std::size_t answered = model.call_batch(3, rows, outs, original);
    std::printf("calls %zu fallbacks %zu originals %d batch %zu\n", model.calls(), model.fallbacks(), originals, answered);
    return 0;
}
"""

F90_MAIN = """
program demo
  use, intrinsic :: iso_c_binding, only: c_double, c_int, c_size_t, c_signed_char
  use expcos_mod
  implicit none
  real(c_double) :: x(expcos_n_in), y(expcos_n_out), xs(expcos_n_in, 3), ys(expcos_n_out, 3)
  integer(c_signed_char) :: accepted(3)
  integer(c_size_t) :: count
  integer :: i, fallbacks
  fallbacks = 0
  do i = 0, 999
    x(1) = real(mod(i, 37), c_double) / 36.0_c_double
    x(2) = real(mod(i, 23), c_double) / 22.0_c_double
    if (expcos_predict(x, y) /= 1_c_int) then
      y(1) = exp(x(1)) * cos(x(2)) + 1.0_c_double
      fallbacks = fallbacks + 1
    end if
    write (*, '(es25.17)') y(1)
  end do
  xs = reshape([0.5_c_double, 0.5_c_double, 0.2_c_double, 0.9_c_double, 3.0_c_double, 3.0_c_double], [2, 3])
  count = expcos_predict_batch(3_c_size_t, xs, ys, accepted)
  write (*, '(a, i0, a, i0, a, 3i2)') 'fallbacks ', fallbacks, ' batch ', count, ' accepted', accepted
end program demo
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tol = phasm.Tolerance(rel=2e-3, max_miss_rate=0.02)
    art, _, gate = train_calibrated(expcos(3000, 0), SPEC2, tol, backend="ensemble", member="ridge", k=3,
                                    member_params={"degree": 3})
    assert gate.report_.certified
    out = tmp_path_factory.mktemp("native")
    export_model(art, "cpp", "expcos", out)
    export_model(art, "fortran", "expcos", out)
    rows = np.array([[(i % 37) / 36.0, (i % 23) / 22.0] for i in range(1000)])
    return out, art, rows


def _reference(out, rows, cc):
    native = NativeModel(compile_shared(out, "expcos", cc=cc, out=out / "libref.so"), "expcos")
    Y, acc = native.predict(rows, 1)
    truth = np.exp(rows[:, 0]) * np.cos(rows[:, 1]) + 1.0
    return np.where(acc, Y[:, 0], truth), acc


@pytest.mark.parametrize("compiler", CXXS or ["c++"])
def test_cpp_class_calls_the_fallback_and_counts(exported, compiler, tmp_path) -> None:
    out, art, rows = exported
    ccs = compilers()
    if not ccs or not shutil.which(compiler):
        pytest.skip("no C and C++ compiler on this machine: the generated code cannot be compiled here")
    (tmp_path / "main.cpp").write_text(CPP_MAIN)
    exe = tmp_path / "demo"
    subprocess.run([compiler, "-std=c++17", *WARN, "-Wold-style-cast", "-Wshadow", "-O2", f"-I{out}", str(tmp_path / "main.cpp"),
                    "-o", str(exe), "-lm"], check=True, capture_output=True, text=True)
    lines = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.splitlines()
    expected, acc = _reference(out, rows, ccs[0])
    np.testing.assert_array_equal(np.array(lines[:1000], float), expected)
    n_fall = int((~acc).sum())
    # 1000 rows, a NaN row and an out-of-range row (both fall back), then a batch of 3 (the last out of range).
    assert lines[-1].startswith(f"calls 1005 fallbacks {n_fall + 2 + 1}")
    assert lines[-1].endswith("batch 2") and f"originals {n_fall + 3}" in lines[-1]


def test_fortran_module_binds_to_the_c_functions(exported, fc, tmp_path) -> None:
    out, art, rows = exported
    ccs = compilers()
    if not ccs:
        pytest.skip("no C compiler on this machine: the generated code cannot be compiled here")
    build = tmp_path / "build"
    build.mkdir()
    (tmp_path / "main.f90").write_text(F90_MAIN)
    run = lambda *cmd: subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, cwd=build)  # noqa: E731
    run(ccs[0], "-std=c99", *WARN, "-O2", f"-I{out}", "-c", out / "expcos_capi.c", "-o", "capi.o")
    run(fc, "-std=f2008", *WARN, "-O2", "-c", out / "expcos_mod.f90", "-o", "mod.o")
    run(fc, "-std=f2008", *WARN, "-O2", "-c", tmp_path / "main.f90", "-o", "main.o")
    run(fc, "main.o", "mod.o", "capi.o", "-o", "demo", "-lm")
    lines = run(build / "demo").stdout.splitlines()
    expected, acc = _reference(out, rows, ccs[0])
    np.testing.assert_allclose(np.array(lines[:1000], float), expected, rtol=1e-15)
    assert lines[-1].split() == ["fallbacks", str(int((~acc).sum())), "batch", "2", "accepted", "1", "1", "0"]
