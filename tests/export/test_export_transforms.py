"""Exported models with per-variable transforms (log, asinh, logit) and inputs they do not read
(constants, duplicates) answer as Python's, through the model, its members and its gate."""

from __future__ import annotations

import numpy as np
import pytest
from export_helpers import build, compilers

import phasm
from phasm.export import compare, sample_rows
from phasm.gate import train_calibrated
from phasm.train import fit_model

CCS = compilers()
pytestmark = pytest.mark.skipif(not CCS, reason="no C compiler on this machine: the generated code cannot be compiled here")

SPEC = phasm.Spec.from_declarations(
    "t.kin", {"T": phasm.Scalar(), "P": phasm.Scalar(), "phi": phasm.Scalar(), "P2": phasm.Scalar()},
    {"tau": phasm.Scalar(), "q": phasm.Scalar(), "s": phasm.Scalar()})


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    T = rng.uniform(1000, 1500, n)
    P = np.exp(rng.uniform(0, np.log(1e3), n))  # log-uniform: the log is chosen
    phi = np.full(n, 1.0)                          # constant: not read
    X = np.c_[T, P, phi, P]                        # P2 duplicates P: not read
    tau = 1e-9 * np.exp(15000 / T) / P             # 4+ decades: log
    q = 1.0 - 1e-4 * P ** 0.9 / (1 + 1e-4 * P ** 0.9) * 0.999  # crowds 1: logit
    s = np.sinh(rng.uniform(-6, 6, n)) * 1e-3     # both signs, decades: asinh
    return X, np.c_[tau, q, s]


def test_transforms_and_unread_inputs_match_python(tmp_path) -> None:
    X, Y = data(1200, 0)
    art, result = fit_model((X, Y), SPEC, backend="ridge", degree=3)
    kinds = {n: t.kind for n, t in art.transforms.items()}
    assert kinds == {"T": "standardise", "P": "log", "phi": "standardise", "P2": "log", "tau": "log",
                     "q": "logit", "s": "asinh"}, result.transforms
    assert art.columns.constant == {2: 1.0} and art.columns.duplicate == {3: 1}
    native = build(art, CCS[0], out=tmp_path)
    text = (tmp_path / "m.h").read_text()
    assert "m_impl_tx" in text and "(float)log(" in text and "sinh((double)" in text and "(1.0 + exp(-" in text
    Xs = sample_rows(art, 2000, seed=1)
    res = compare(art, native, Xs)
    assert res.max_rel_error <= 1e-5, res
    # A call with another value of the constant, or a duplicate that differs, or a P <= 0 has no answer:
    # NaN in Python, not ok in C.
    bad = Xs[:3].copy()
    bad[0, 2] = 1.5
    bad[1, 3] = bad[1, 1] * 2
    bad[2, 1] = bad[2, 3] = -1.0
    Y_c, ok = native.model(bad, 3)
    assert not ok.any() and np.isnan(art.predict(bad.astype(np.float32))).all()


def test_ensemble_members_and_gate_through_transforms(tmp_path) -> None:
    pytest.importorskip("torch")
    X, Y = data(3000, 2)
    tol = phasm.Tolerance(rel=0.05, max_miss_rate=0.05)
    art, _, gate = train_calibrated((X, Y[:, :1]), phasm.Spec.from_declarations(
        "t.kin1", {"T": phasm.Scalar(), "P": phasm.Scalar(), "phi": phasm.Scalar(), "P2": phasm.Scalar()},
        {"tau": phasm.Scalar()}), tol, backend="ensemble", member="ridge", k=3, member_params={"degree": 3})
    assert art.transforms["tau"].kind == "log" and gate.score_ == "spread+residual"
    native = build(art, CCS[0], out=tmp_path)
    Xs = sample_rows(art, 3000, seed=3)
    Xs = Xs[Xs[:, 1] > 0]  # the gate's range, widened, reaches below P = 0, where neither side has an answer
    res = compare(art, native, Xs)
    assert res.decisions_equal >= 0.999 and res.max_rel_error <= 1e-5 and res.gated_max_rel_error <= 1e-5, res
    assert res.c_accepted > 0.5, res


def test_folded_mlp_with_log_output(tmp_path) -> None:
    pytest.importorskip("torch")
    X, Y = data(800, 4)
    spec = phasm.Spec.from_declarations("t.k2", {"T": phasm.Scalar(), "P": phasm.Scalar()}, {"tau": phasm.Scalar()})
    art, _ = fit_model((X[:, :2], Y[:, :1]), spec, backend="torch", hidden=(16,), epochs=5, threads=1)
    assert art.transforms["tau"].kind == "log"
    native = build(art, CCS[0], out=tmp_path)
    assert "standardisation folded" in (tmp_path / "m.h").read_text()
    res = compare(art, native, sample_rows(art, 1000, seed=5))
    assert res.max_rel_error <= 1e-5, res
