"""Shared fixtures: every test runs in its own temporary working directory."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# Timing deadlines flake on a busy 2-core CI machine; correctness is what the properties check.
settings.register_profile("phasm", deadline=None)
settings.load_profile("phasm")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in list(os.environ):
        if var.startswith("PHASM_"):
            monkeypatch.delenv(var)
    yield
