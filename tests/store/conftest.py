"""Fixtures of the store tests: a closed store of known rows."""

from __future__ import annotations

import pytest
from known_store import write_known


@pytest.fixture
def known_store(tmp_path):
    """A closed store of 5000 known rows (ids 1..5000), flushed every 100 rows."""
    path = tmp_path / "known.h5"
    write_known(path, 5000)
    return path
