"""A function spread over a package: helpers and globals in sibling modules are found by both analyses."""

from __future__ import annotations

import importlib
import sys
import textwrap

import numpy as np
import pytest

from phasm.discover import inspect_function, proposed_code


@pytest.fixture()
def field_pkg(tmp_path, monkeypatch):
    pkg = tmp_path / "fieldpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "consts.py").write_text(textwrap.dedent("""
        import numpy as np
        TABLE = np.linspace(0.0, 1.0, 5)
        COUNT = 0
    """))
    (pkg / "kernels.py").write_text(textwrap.dedent("""
        from fieldpkg import consts

        def interpolate(x):
            return float(np.interp(x, consts.TABLE, consts.TABLE ** 2))

        def bump():
            consts.COUNT += 1

        import numpy as np
    """))
    (pkg / "api.py").write_text(textwrap.dedent("""
        from fieldpkg import kernels

        def field(x, y):
            kernels.bump()
            return kernels.interpolate(x) * y

        def depth(n):
            return 0 if n == 0 else 1 + depth(n - 1)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("fieldpkg.api")
    for name in [m for m in sys.modules if m.startswith("fieldpkg")]:
        del sys.modules[name]


def test_globals_of_sibling_modules_through_helpers(field_pkg):
    ins = inspect_function(field_pkg.field, [((0.3, 2.0), {})])
    kinds = ins.kinds()
    assert kinds["global:fieldpkg.consts.TABLE"] == "in"
    assert kinds["global:fieldpkg.consts.COUNT"] == "inout"  # a call counter: hidden state
    assert kinds["x"] == "in" and kinds["y"] == "in" and kinds["return"] == "out"
    assert ins.by_name("global:fieldpkg.consts.TABLE").shape == (5,)
    assert set(ins.calls) == {"fieldpkg.kernels.bump", "fieldpkg.kernels.interpolate"}
    consts = sys.modules["fieldpkg.consts"]
    assert consts.COUNT == 0 and np.array_equal(consts.TABLE, np.linspace(0.0, 1.0, 5))
    code = proposed_code(ins)
    assert '"COUNT": phasm.glob("fieldpkg.consts.COUNT", dtype=\'int64\', direction=\'inout\'),' in code


def test_recursion(field_pkg):
    ins = inspect_function(field_pkg.depth, [((4,), {})])
    assert ins.kinds() == {"n": "in", "return": "out"} and ins.flags == []
