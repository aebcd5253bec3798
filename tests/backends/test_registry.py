"""Backend registry: entry points, lazy loading, clear errors for missing extras."""

from __future__ import annotations

import pytest

from phasm.backends import Backend, BackendError, BackendUnavailable, get_backend, list_backends, register_builtin


class NeedsMissingLib(Backend):
    name = "needs-missing"
    requires = ("phasm_no_such_module_xyz",)
    extra = "imaginary"


def test_ridge_is_registered_through_entry_points():
    from importlib import metadata

    eps = {ep.name for ep in metadata.entry_points(group="phasm.backends")}
    assert "ridge" in eps
    info = {b.name: b for b in list_backends()}
    assert info["ridge"].available


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(BackendError, match="unknown backend 'nope'.*ridge"):
        get_backend("nope")


def test_missing_library_names_the_extra():
    register_builtin("needs-missing", f"{__name__}:NeedsMissingLib")
    with pytest.raises(BackendUnavailable, match=r"phasm_no_such_module_xyz.*pip install 'phasm\[imaginary\]'"):
        get_backend("needs-missing")
    row = {b.name: b for b in list_backends()}["needs-missing"]
    assert not row.available and row.missing == ("phasm_no_such_module_xyz",) and row.extra == "imaginary"


def test_broken_plugin_is_reported_not_raised_in_listing():
    register_builtin("broken", "phasm_no_such_module_xyz:Thing")
    row = {b.name: b for b in list_backends()}["broken"]
    assert not row.available and "failed to load" in row.error
