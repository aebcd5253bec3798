"""Fixtures of the report tests: the profile_driver example at a small size (every kind of target),
its report, and a headless Chromium (installed with apt-get when missing and possible)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chromium import find_chromium, install_chromium  # noqa: E402  (tests/report is on sys.path: rootdir-relative)
from driver_example import build


@pytest.fixture(scope="session")
def driver_targets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A profile, a capture store with rows after training, a calibrated model and a cost model."""
    return build(tmp_path_factory.mktemp("profile-driver"))


@pytest.fixture(scope="session")
def driver_report(driver_targets: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from phasm.report import build_report

    out = tmp_path_factory.mktemp("report") / "report.html"
    return build_report([driver_targets[k] for k in ("model", "store", "profile", "bench")], out)


@pytest.fixture(scope="session")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        path, why = install_chromium()
        if path is None:
            pytest.skip(f"the browser check needs Chromium (Debian: apt-get install chromium); "
                        f"it is not installed and could not be: {why}")
    return path
