"""The docstring examples of the torch backend modules run."""

from __future__ import annotations

import doctest
import importlib

import pytest

pytest.importorskip("torch")


@pytest.mark.parametrize("name", ["phasm.backends.torch_mlp", "phasm.backends.torch_train", "phasm.backends.torch_physics",
                                  "phasm.backends.physics", "phasm.train.physics"])
def test_doctests(name: str) -> None:
    torch = importlib.import_module("torch")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    finally:
        torch.set_num_threads(old)
    assert result.attempted > 0 and result.failed == 0
