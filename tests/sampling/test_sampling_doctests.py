"""The examples in the sampling modules' docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["space", "design", "runfile", "target", "run", "adaptive", "__init__"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module("phasm.sampling" if name == "__init__" else f"phasm.sampling.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, extraglobs={"np": __import__("numpy")})
    assert result.attempted > 0 and result.failed == 0
