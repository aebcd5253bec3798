"""The examples in the profile modules' docstrings run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["session", "ranking", "render_folded", "render_speedscope", "render_svg", "costmodel",
           "sampler_inprocess", "sampler_pyspy"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"phasm.profile.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
