"""What export refuses, what it guarantees about the text (deterministic, safe, exact numbers), the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from export_helpers import SPEC2, build, compilers, expcos
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

import phasm
from phasm.cli import app
from phasm.errors import ExportError, PhasmError
from phasm.export import export_model, generate, sample_rows
from phasm.export.c_header import generate_header, header_info
from phasm.export.cformat import c_double, c_float, check_prefix, comment_text
from phasm.export.gateplan import Regions, gate_plan
from phasm.export.kdtree import build_kdtree
from phasm.export.plan import model_plan
from phasm.gate import train_calibrated
from phasm.train import ModelArtefact, fit_model

CCS = compilers()
needs_cc = pytest.mark.skipif(not CCS, reason="no C compiler on this machine: the generated code cannot be compiled here")


@pytest.fixture(scope="module")
def calibrated():
    tol = phasm.Tolerance(rel=2e-3, max_miss_rate=0.02)
    art, _, gate = train_calibrated(expcos(3000, 0), SPEC2, tol, backend="ensemble", member="ridge", k=3,
                                    member_params={"degree": 3})
    assert gate.report_.certified
    return art, gate


# -- refusals ------------------------------------------------------------------


def test_refuses_what_it_cannot_export(tmp_path) -> None:
    from phasm.backends.ensemble import EnsembleBackend
    from phasm.backends.gp import GPBackend
    from phasm.train import Standardiser

    norm = Standardiser(np.zeros(2, np.float32), np.ones(2, np.float32)), Standardiser(np.zeros(1, np.float32), np.ones(1, np.float32))
    with pytest.raises(ExportError, match="not exportable: backend 'gp'"):
        export_model(ModelArtefact(SPEC2, GPBackend(), *norm), "c", "m", tmp_path)
    with pytest.raises(ExportError, match="an ensemble of 'gp' members"):
        export_model(ModelArtefact(SPEC2, EnsembleBackend(member="gp", k=2), *norm), "c", "m", tmp_path)
    assert not list(tmp_path.iterdir())  # nothing written


def test_refuses_custom_torch_modules_and_sets(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    X, Y = expcos(200, 2)
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.LeakyReLU(), torch.nn.Linear(8, 1))
    art, _ = fit_model((X, Y), SPEC2, backend="torch", model=net, epochs=1, threads=1)
    with pytest.raises(ExportError, match="custom torch module"):
        export_model(art, "c", "m", tmp_path)
    spec = phasm.Spec.from_declarations("t.s", {"hits": phasm.each("hits", fields=["x"], max_len=4)}, {"y": phasm.Scalar()})
    art.spec = spec
    with pytest.raises(ExportError, match="variable-length variables"):
        export_model(art, "c", "m", tmp_path)


def test_refuses_bad_gates_transforms_and_arguments(calibrated, tmp_path) -> None:
    art, gate = calibrated
    with pytest.raises(ExportError, match="not exportable: gate kind 'ragged-conformal'"):
        export_model(art, "c", "m", tmp_path, gate={"kind": "ragged-conformal"})
    broken = dict(gate.to_json())
    broken["domain"] = {"kind": "domain"}
    with pytest.raises(ExportError, match="gate record cannot be read"):
        export_model(art, "c", "m", tmp_path, gate=broken)
    import types

    saved = art.transforms
    art.transforms = {"a": types.SimpleNamespace(kind="cube", scale=1.0, low=0.0, high=1.0)}  # not in the table
    try:
        with pytest.raises(ExportError, match="transform 'cube', which the exporter does not generate"):
            export_model(art, "c", "m", tmp_path)
    finally:
        art.transforms = saved
    with pytest.raises(ExportError, match="lang: expected one of c, cpp, fortran, got 'java'"):
        export_model(art, "java", "m", tmp_path)
    for bad in ("1abc", "a-b", "", "double", "_x", "x" * 41):
        with pytest.raises(ExportError, match="prefix"):
            check_prefix(bad)
    with pytest.raises(ExportError, match="expected a model folder path or a phasm.train.ModelArtefact"):
        export_model(42, "c", "m", tmp_path)
    assert issubclass(ExportError, PhasmError)


def test_refuses_a_tampered_model_folder(calibrated, tmp_path) -> None:
    art, _ = calibrated
    art.save(tmp_path / "model")
    weights = next(p for p in (tmp_path / "model").iterdir() if p.suffix == ".npz")
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(PhasmError, match="corrupted or truncated"):
        export_model(tmp_path / "model", "c", "m", tmp_path / "out")


# -- the generated text ----------------------------------------------------------


def test_same_model_same_bytes(calibrated, tmp_path) -> None:
    art, _ = calibrated
    art.save(tmp_path / "model")
    a = generate(tmp_path / "model", "m")
    b = generate(ModelArtefact.load(tmp_path / "model").path, "m")
    assert a == b
    assert generate(art, "m") == generate(art, "m")
    head = a["m.h"][:3000]
    for needle in ("phasm 0.1.0", "Certificate: gate certified", "Tolerance: relative L2 error <= 0.002",
                   "[0] a: scalar, float64, in", "spread+residual", "sha256"):
        assert needle in head, needle


@needs_cc
def test_hostile_names_stay_in_comments(tmp_path) -> None:
    """A variable name is data: a comment terminator or a line break in it must not become code."""
    evil = "y */ int oops = 1; /* \\\n#error injected"
    spec = phasm.Spec.from_declarations("t.evil */ #error", {"a": phasm.Scalar(), "b": phasm.Scalar()}, {evil: phasm.Scalar()})
    art, _ = fit_model(expcos(200, 3), spec, backend="ridge", degree=1)
    native = build(art, CCS[0], out=tmp_path)
    text = (tmp_path / "m.h").read_text()
    assert "oops" in text and "*/ int oops" not in text and "\n#error" not in text
    assert native.predict(np.array([[0.5, 0.5]]), 1)[1].all()


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float_literals_round_trip(x: float) -> None:
    text = c_float(x)
    assert text.endswith("f") and ("." in text or "e" in text)
    assert np.float32(float(text[:-1])) == np.float32(x)
    assert np.signbit(np.float32(float(text[:-1]))) == np.signbit(np.float32(x))


@given(st.floats(allow_nan=False))
def test_double_literals_round_trip(x: float) -> None:
    text = c_double(x)
    if np.isinf(x):
        assert "HUGE_VAL" in text
    else:
        assert float(text) == x


@given(st.text())
def test_comment_text_is_inert(s: str) -> None:
    out = comment_text(s)
    assert "*/" not in out and "/*" not in out and "\n" not in out and "\\" not in out
    assert all(" " <= c <= "~" for c in out)


def test_non_finite_weights_refused() -> None:
    with pytest.raises(ExportError, match="not finite"):
        c_float(float("nan"))


# -- the k-d tree and the gate's regions -------------------------------------------


@given(st.integers(5, 400), st.integers(1, 7), st.integers(1, 6), st.integers(0, 10_000))
def test_kdtree_finds_the_exact_neighbours(m: int, d: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    P = rng.normal(size=(m, d)).astype(np.float32)
    P[: m // 4] = P[0]  # duplicates
    tree = build_kdtree(P, leaf_size=4)
    k = min(k, m)
    for z in rng.normal(size=(5, d)) * 1.5:
        dist, rows = tree.query(z, k)
        exact = np.sort(np.sqrt(((P.astype(np.float64) - z) ** 2).sum(1)))[:k]
        np.testing.assert_allclose(dist, exact, rtol=1e-12)
        np.testing.assert_allclose(np.sqrt(((P[rows].astype(np.float64) - z) ** 2).sum(1)), dist, rtol=1e-12)
    assert tree.count.sum() == m and (tree.count <= 4).all()


@needs_cc
def test_thresholds_per_region(calibrated, tmp_path) -> None:
    """A group-conditional gate: one certified threshold per bin of an input; the C look-up picks the right one."""
    from phasm.export.native import NativeModel, compile_shared

    art, gate = calibrated
    mplan = model_plan(art)
    gplan = gate_plan(gate.to_json(), n_in=2, n_out=1, spec=art.spec, ensemble=True)
    gplan.regions = Regions("input", edges=[0.3, 0.6], thresholds=[gate.threshold_ * 2, 0.0, -np.inf], index=0)
    (tmp_path / "m.h").write_text(generate_header(mplan, gplan, header_info(art), "m"))
    native = NativeModel(compile_shared(tmp_path, "m", cc=CCS[0]), "m")
    X = sample_rows(art, 3000, seed=11)
    _, acc = native.predict(X, 1)
    Y, score = gate.predict_scores(X.astype(np.float32), art)
    expected = np.isfinite(score) & (score <= gplan.regions.thresholds[gplan.regions.region_of(X[:, 0].astype(np.float32))])
    assert (acc == expected).mean() >= 0.999
    assert acc[X[:, 0] > 0.61].sum() == 0 and acc[X[:, 0] < 0.29].sum() > 0


FAST_MATH_MAIN = r"""
#include <math.h>
#include <stdio.h>
#include "m.h"
int main(void) {
    double bad[4][2] = {{NAN, 0.5}, {0.5, INFINITY}, {-INFINITY, 0.5}, {1e300, 0.5}}, good[2] = {0.4, 0.3}, out[1];
    int i, accepted = 0, ok;
    for (i = 0; i < 4; ++i) accepted += m_predict(bad[i], out);
    ok = m_predict(good, out);
    printf("%d %d %.9g\n", accepted, ok, out[0]);
    return 0;
}
"""


@needs_cc
def test_fast_math_keeps_nan_checks(calibrated, tmp_path) -> None:
    """A program built with -ffast-math (in its own process: it sets the FPU's flush-to-zero) still refuses NaN."""
    import subprocess

    art, _ = calibrated
    export_model(art, "c", "m", tmp_path)
    (tmp_path / "main.c").write_text(FAST_MATH_MAIN)
    subprocess.run([CCS[0], "-std=c99", "-O3", "-ffast-math", "-Wall", "-Wextra", "-Werror", f"-I{tmp_path}",
                    str(tmp_path / "main.c"), "-o", str(tmp_path / "fm"), "-lm"], check=True, capture_output=True)
    bad, good, value = subprocess.run([str(tmp_path / "fm")], check=True, capture_output=True, text=True).stdout.split()
    assert bad == "0" and good == "1"
    native = build(art, CCS[0], out=tmp_path / "ref")
    y, ok = native.predict_one(np.array([0.4, 0.3]), 1)
    assert ok and abs(float(value) - y[0]) <= 1e-5 * abs(y[0])


# -- command line --------------------------------------------------------------------


def test_cli_export_and_check(calibrated, tmp_path) -> None:
    art, _ = calibrated
    art.save(tmp_path / "model")
    runner = CliRunner()
    res = runner.invoke(app, ["export", str(tmp_path / "model"), "--lang", "fortran", "--prefix", "expcos",
                              "--out", str(tmp_path / "native")] + (["--check", "2000"] if CCS else []))
    assert res.exit_code == 0, res.output
    assert {p.name for p in (tmp_path / "native").iterdir()} == {"expcos.h", "expcos_capi.c", "expcos_mod.f90"}
    if CCS:
        assert "gate decisions equal on 100.0000%" in res.output and "no warnings" in res.output
    res = runner.invoke(app, ["export", str(tmp_path / "missing"), "--lang", "c", "--prefix", "x", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "error:" in res.output and "no model folder there" in res.output
    res = runner.invoke(app, ["export", str(tmp_path / "model"), "--lang", "c", "--prefix", "9x", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "prefix: expected a C identifier" in res.output
    meta = json.loads((tmp_path / "model" / "phasm.json").read_text())
    assert Path(tmp_path / "native" / "expcos.h").read_text().count(meta["files"]["m0.ridge.npz"]) == 1
