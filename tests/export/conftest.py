"""Fixtures of the export tests: the system's C, C++ and Fortran compilers (skip with a message where missing)."""

from __future__ import annotations

import shutil

import pytest

from phasm.export import find_compiler


def _need(tool: str | None, what: str) -> str:
    if tool is None:
        pytest.skip(f"no {what} on this machine: the generated code cannot be compiled here")
    return tool


@pytest.fixture(scope="session")
def cc() -> str:
    return _need(find_compiler(), "C compiler (cc, gcc or clang)")


@pytest.fixture(scope="session")
def cxx() -> str:
    return _need(next((c for c in ("c++", "g++", "clang++") if shutil.which(c)), None), "C++ compiler (c++, g++, clang++)")


@pytest.fixture(scope="session")
def fc() -> str:
    return _need(next((c for c in ("gfortran", "flang") if shutil.which(c)), None), "Fortran compiler (gfortran: apt-get install gfortran)")
