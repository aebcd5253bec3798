"""The docstring examples of the onnx backend and inference-engine modules run."""

from __future__ import annotations

import doctest
import importlib

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.mark.parametrize("name", ["phasm.backends.onnx_graph", "phasm.backends.onnx_check", "phasm.backends.onnx_engine",
                                  "phasm.backends.onnx_backend", "phasm.train.inference"])
def test_doctests(name: str) -> None:
    if name in ("phasm.backends.onnx_backend", "phasm.train.inference"):
        torch = pytest.importorskip("torch")
        torch.set_num_threads(1)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
