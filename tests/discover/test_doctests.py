"""The examples in the discover modules' docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["analyze", "dynamic", "effects", "examples", "inspection", "linetrace", "names", "opaque", "paths",
           "printer", "proposal", "recorder", "report", "scope", "snapshot", "static", "tracearray", "tracing",
           "unsafe", "watch"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"phasm.discover.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
