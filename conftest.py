"""Doctests in ``src/phasm`` run like the tests: in a fresh temporary directory, with numpy as ``np``."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _doctests_in_tmp(request: pytest.FixtureRequest, tmp_path, monkeypatch, doctest_namespace) -> None:
    if isinstance(request.node, pytest.DoctestItem):
        monkeypatch.chdir(tmp_path)
        doctest_namespace.setdefault("np", np)
