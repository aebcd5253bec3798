"""A model folder or a store is data: its spec may bring names, shapes and dtypes, never the objects a
call touches.  Attacks through the optic records of ``phasm.json`` and of a store's spec, tried as an
attacker would: payloads that leave marker files, a payload that kills the process (run in a
subprocess), a record that overwrites a module global.  None may run; each is a one-line error or is
ignored in favour of the bindings the code declares.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import phasm
from phasm.bindings.spec import Spec
from phasm.errors import SpecError

from folder_forgery import reseal


def double(x: float) -> float:
    return 2.0 * x


def trained_model(tmp_path, name="m"):
    f = phasm.surrogate(double, store=tmp_path / f"{name}.h5", mode="capture", backend="ridge")
    for x in np.linspace(0.0, 1.0, 100):
        f(float(x))
    f.train(degree=1)
    return f.save(tmp_path / name)


def tamper(folder, *, out=None, inp=None):
    """Replace the optic records of the output (and input) variable in a model folder's phasm.json."""
    meta = json.loads((folder / "phasm.json").read_text())
    variables = meta["spec"]["variables"]
    if inp is not None:
        variables[0]["optic"] = inp
    if out is not None:
        variables[1]["optic"] = out
    # The attacker also recomputes every digest (the manifest is no signature): what stands behind it
    # is that an optic record is text, never a binding.
    reseal(folder, meta)


def marker_module(tmp_path, monkeypatch, name):
    """A module whose import leaves a marker file: importing it is the payload."""
    marker = tmp_path / f"{name}.imported"
    (tmp_path / f"{name}.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('pwned')\nX = 1.0\n"
                                         "def F(**kw):\n    pathlib.Path(" + repr(str(marker)) + ").write_text('called')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)
    return marker


EXIT_RECORD = {"kind": "path", "root": {"kind": "return", "key": None}, "steps": [["attr", "slope"]],
               "classes": ["os:_exit", None]}


def test_a_class_named_in_phasm_json_is_never_called(tmp_path):
    """The reported attack: an output ``attr`` optic with cls="os:_exit" killed the process."""
    folder = trained_model(tmp_path)
    tamper(folder, out=EXIT_RECORD)
    victim = tmp_path / "victim.py"
    victim.write_text(textwrap.dedent(f"""
        import sys
        import phasm

        def double(x: float) -> float:
            return 2.0 * x

        try:
            f = phasm.surrogate(double, model={str(folder)!r}, mode="model")
            print("answer", f(0.5))
        except phasm.PhasmError as exc:
            print("refused:", exc)
        g = phasm.surrogate(double, model={str(folder)!r}, mode="model",
                            inputs={{"x": phasm.Scalar()}}, outputs={{"result": phasm.Scalar()}})
        print("declared", g(0.5))
        print("survived")
    """))
    proc = subprocess.run([sys.executable, str(victim)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "survived"
    assert lines[0].startswith("refused:") and "output variable 'result' lives at return.slope" in lines[0]
    assert "\n" not in lines[0] and lines[1].startswith("declared 1.0")  # the code's bindings answer


def test_a_global_output_record_never_overwrites_a_module_global(tmp_path):
    folder = trained_model(tmp_path)
    tamper(folder, out={"kind": "global", "module": "json", "name": "dumps"})
    dumps = json.dumps
    with pytest.raises(SpecError, match="output variable 'result' lives at global:json.dumps, not in the return value"):
        phasm.surrogate(double, model=folder, mode="model")
    g = phasm.surrogate(double, model=folder, mode="model",
                        inputs={"x": phasm.Scalar()}, outputs={"result": phasm.Scalar()})
    assert g(0.25) == pytest.approx(0.5, abs=1e-5)
    assert json.dumps is dumps


@pytest.mark.parametrize("record", [
    {"kind": "global", "module": "phasm_evil_in", "name": "X"},
    {"kind": "path", "root": {"kind": "global", "module": "phasm_evil_in", "name": "X"}, "steps": [["attr", "real"]]},
    {"kind": "each", "collection": {"kind": "arg", "name": "x"}, "fields": ["a"], "cls": "phasm_evil_in:F"},
])
def test_an_input_record_never_imports_a_module(tmp_path, monkeypatch, record):
    marker = marker_module(tmp_path, monkeypatch, "phasm_evil_in")
    folder = trained_model(tmp_path)
    tamper(folder, inp=record)
    f = phasm.surrogate(double, model=folder, mode="model")  # bound by the signature: x is the argument x
    assert f(0.5) == pytest.approx(1.0, abs=1e-5) and repr(f.spec["x"].optic) == "arg(x)"
    assert not marker.exists() and "phasm_evil_in" not in sys.modules


def test_an_each_output_record_never_builds_a_named_class(tmp_path, monkeypatch):
    marker = marker_module(tmp_path, monkeypatch, "phasm_evil_out")
    folder = trained_model(tmp_path)
    tamper(folder, out={"kind": "each", "collection": {"kind": "return", "key": None}, "fields": ["a"],
                        "cls": "phasm_evil_out:F"})
    with pytest.raises(SpecError, match="not in the return value"):
        phasm.surrogate(double, model=folder, mode="model")
    assert not marker.exists()


def test_a_store_spec_never_brings_bindings(tmp_path, monkeypatch):
    """A store whose spec names a global and a class: training an undeclared function on it binds by
    the signature (or refuses), and imports nothing."""
    import h5py

    marker = marker_module(tmp_path, monkeypatch, "phasm_evil_store")
    f = phasm.surrogate(double, store=tmp_path / "s.h5", mode="capture", backend="ridge")
    for x in np.linspace(0.0, 1.0, 50):
        f(float(x))
    f.close()
    with h5py.File(tmp_path / "s.h5", "a") as h5:
        spec = json.loads(h5.attrs["spec"])
        spec["variables"][0]["optic"] = {"kind": "global", "module": "phasm_evil_store", "name": "X"}
        spec["variables"][1]["optic"] = EXIT_RECORD
        h5.attrs["spec"] = json.dumps(spec)
    g = phasm.surrogate(double, store=tmp_path / "s.h5", backend="ridge")
    with pytest.raises(SpecError, match="output variable 'result' lives at return.slope"):
        g.train(degree=1)
    declared = phasm.surrogate(double, store=tmp_path / "s.h5", backend="ridge",
                               inputs={"x": phasm.Scalar()}, outputs={"result": phasm.Scalar()})
    declared.train(degree=1)
    declared.mode = "model"
    assert declared(0.5) == pytest.approx(1.0, abs=1e-5)
    assert not marker.exists() and "phasm_evil_store" not in sys.modules


def test_an_in_place_variable_is_never_taken_from_a_file(tmp_path):
    """An undeclared function never lets a model folder choose which argument is written in place."""
    def relax(f, u):
        u *= 0.5
        u += f

    w = phasm.surrogate(relax, store=tmp_path / "r.h5", mode="capture", backend="ridge")
    rng = np.random.default_rng(0)
    for _ in range(50):
        w(rng.normal(size=3), rng.normal(size=3))
    w.train(degree=1)
    w.save(tmp_path / "relax")
    g = phasm.surrogate(relax, mode="model")
    with pytest.raises(SpecError, match="input variable 'u' .* is changed in place.*call it once"):
        g.load(tmp_path / "relax")
    g.mode = "capture"
    g(np.ones(3), np.zeros(3))  # the spec now comes from the code (this call)
    g.load(tmp_path / "relax")
    g.mode = "model"
    u = np.zeros(3)
    g(np.ones(3), u)
    np.testing.assert_allclose(u, np.ones(3), atol=1e-4)


def test_a_declared_spec_is_checked_against_the_file(tmp_path):
    folder = trained_model(tmp_path)
    with pytest.raises(phasm.ArtefactError, match="variable 'result': dtype float32 here, float64 there"):
        phasm.surrogate(double, model=folder, inputs={"x": phasm.Scalar()}, outputs={"result": phasm.Scalar("float32")})
    with pytest.raises(phasm.ArtefactError, match="variable 'y': present here as y \\[out\\] scalar float64, missing there"):
        phasm.surrogate(double, model=folder, inputs={"x": phasm.Scalar()}, outputs={"y": phasm.Scalar()})


records = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)
optic_records = st.fixed_dictionaries(
    {"kind": st.sampled_from(["arg", "return", "path", "global", "each", "nope"])},
    optional={"name": records, "key": records, "module": st.sampled_from(["os", "subprocess", "phasm_never"]),
              "root": records, "steps": records, "classes": records, "collection": records, "fields": records,
              "cls": st.sampled_from(["os:system", "subprocess:Popen", "builtins:eval"])})


@given(optic_records)
def test_any_optic_record_reads_as_text_and_builds_nothing(record):
    before = set(sys.modules)
    spec = Spec.from_json({"function": "m.f", "variables": [
        {"name": "x", "shape": [], "dtype": "<f8", "direction": "in", "optic": record},
        {"name": "y", "shape": [], "dtype": "<f8", "direction": "out"}]})
    assert spec["x"].optic is None and isinstance(spec["x"].where, str) and "\n" not in spec["x"].where
    assert set(sys.modules) == before  # nothing was imported
