"""mypy is clean over the package: plain mypy everywhere, the --strict flags on phasm.surrogate,
phasm.bindings.spec, phasm.train.artefact and phasm.store (the config is in pyproject.toml)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope="module")
def mypy_errors() -> list[str]:
    if importlib.util.find_spec("mypy") is None:
        pytest.fail("mypy is not installed; it is in the test extra: pip install -e '.[test]'")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary", "--no-pretty"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode not in (0, 1) or "INTERNAL ERROR" in proc.stdout + proc.stderr:
        pytest.fail(f"mypy did not run (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return [line for line in proc.stdout.splitlines() if ": error:" in line]


def test_mypy_is_clean(mypy_errors: list[str]) -> None:
    errors = mypy_errors
    assert not errors, f"{len(errors)} mypy errors:\n" + "\n".join(errors)
