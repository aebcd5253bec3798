"""Exported torch MLPs (plain, skip path, dropped constant inputs, every activation, ensembles) answer as Python's."""

from __future__ import annotations

import numpy as np
import pytest
from export_helpers import build, compilers

import phasm
from phasm.export import compare, sample_rows
from phasm.gate import train_calibrated
from phasm.train import fit_model

pytest.importorskip("torch")

CCS = compilers()
pytestmark = pytest.mark.skipif(not CCS, reason="no C compiler on this machine: the generated code cannot be compiled here")

SPEC3 = phasm.Spec.from_declarations("t.f3", {"a": phasm.Scalar(), "b": phasm.Scalar(), "c": phasm.Scalar()},
                                     {"y": phasm.Scalar(), "z": phasm.Scalar()})


def data3(n: int, seed: int, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(seed).uniform(-1, 1, (n, 3)) + offset
    X[:, 2] = 0.25 + offset  # a constant input: the MLP drops it (SelectColumns)
    Y = np.c_[np.sin(2 * X[:, 0]) + X[:, 1] ** 2 + 3, X[:, 0] * X[:, 1] - 2]
    return X, Y


def small(**kw):
    return dict(hidden=(16, 12), epochs=8, batch_size=64, lr=3e-3, threads=1, **kw)


@pytest.mark.parametrize("activation", ["silu", "relu", "tanh", "gelu", "elu", "softplus"])
def test_every_activation_matches_python(activation, tmp_path) -> None:
    art, _ = fit_model(data3(600, 0), SPEC3, backend="torch", **small(activation=activation))
    native = build(art, CCS[0], out=tmp_path)
    res = compare(art, native, sample_rows(art, 2000, seed=1))
    # Outputs are O(1) here: float32 rounding in another order stays far below 1e-5 relative.
    assert res.max_rel_error <= 1e-5 and res.max_scaled_error <= 1e-5, res
    assert res.decisions_equal == 1.0 and res.c_accepted == 1.0, res  # no gate: every finite answer


@pytest.mark.parametrize("cc", CCS)
def test_skip_path_and_gate(cc, tmp_path) -> None:
    X, Y = data3(3000, 2)
    tol = phasm.Tolerance(rel=0.02, max_miss_rate=0.05)
    art, _, gate = train_calibrated((X, Y), SPEC3, tol, backend="torch", **small(skip=True))
    assert gate.score_ == "residual"
    native = build(art, cc, out=tmp_path)
    text = (tmp_path / "m.h").read_text()
    assert "linear skip path" in text and "standardisation folded" in text and "reads 2 of 3 inputs" in text
    res = compare(art, native, sample_rows(art, 5000, seed=3))
    assert res.decisions_equal >= 0.999 and res.max_rel_error <= 1e-5, res


def test_large_offsets_keep_the_standardisation_separate(tmp_path) -> None:
    """Inputs far from zero in their own units: Python does not fold the standardisation, nor does C."""
    art, _ = fit_model(data3(600, 4, offset=1000.0), SPEC3, backend="torch", **small())
    native = build(art, CCS[0], out=tmp_path)
    assert "standardisation folded" not in (tmp_path / "m.h").read_text()
    res = compare(art, native, sample_rows(art, 2000, seed=5))
    assert res.max_rel_error <= 1e-5, res


def test_torch_ensemble_spread_gate(tmp_path) -> None:
    X, Y = data3(3000, 6)
    tol = phasm.Tolerance(rel=0.1, max_miss_rate=0.05)
    art, _, gate = train_calibrated((X, Y), SPEC3, tol, backend="ensemble", member="torch", k=3, member_params=small())
    assert gate.score_ == "spread+residual" and gate.report_.certified
    native = build(art, CCS[0], out=tmp_path)
    res = compare(art, native, sample_rows(art, 4000, seed=7))
    assert res.decisions_equal >= 0.999 and res.max_rel_error <= 1e-5 and res.gated_max_rel_error <= 1e-5, res
    assert res.c_accepted > 0.1, res


def test_arrays_inout_and_integer_outputs(tmp_path) -> None:
    """Array variables flatten row-major in spec order; an inout array is input and output; an integer output is rounded."""
    spec = phasm.Spec.from_declarations(
        "t.grid", {"f": phasm.Array((2, 3)), "alpha": phasm.Scalar()},
        {"u": phasm.Array((2, 2), direction="inout"), "n": phasm.Scalar("int64")})
    rng = np.random.default_rng(8)
    X = rng.uniform(0, 1, (800, 11))
    Y = np.c_[X[:, :4] * X[:, 6:7] + X[:, 7:11], np.round(10 * X[:, 6])]
    art, _ = fit_model((X, Y), spec, backend="torch", **small())
    native = build(art, CCS[0], out=tmp_path)
    text = (tmp_path / "m.h").read_text()
    assert "#define M_N_IN 11" in text and "#define M_N_OUT 5" in text and "#define M_IN_u 7" in text
    Xt = sample_rows(art, 500, seed=9)
    Y_c, ok = native.model(Xt, 5)
    Y_py = np.asarray(art.predict(Xt.astype(np.float32)), np.float64)
    assert ok.all()
    np.testing.assert_allclose(Y_c[:, :4], Y_py[:, :4], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(Y_c[:, 4], np.rint(Y_py[:, 4]))
