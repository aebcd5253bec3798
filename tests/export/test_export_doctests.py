"""The docstring examples of the export modules run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["phasm.export.api", "phasm.export.cformat", "phasm.export.gateplan", "phasm.export.kdtree",
           "phasm.export.plan", "phasm.export.transforms", "phasm.export.wrappers"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
