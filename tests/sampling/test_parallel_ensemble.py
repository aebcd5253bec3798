"""Ensemble members trained in parallel on Dask workers: the same model as a sequential fit."""

from __future__ import annotations

import numpy as np
from distributed import get_task_stream

import phasm
from phasm.backends.ensemble import EnsembleBackend
from phasm.train.data import ArrayData


def data():
    X = np.random.default_rng(0).uniform(-1, 1, (400, 3))
    Y = np.stack([X[:, 0] ** 2 + X[:, 1], np.sin(2 * X[:, 2])], axis=1)
    return ArrayData(X, Y, val_fraction=0.2, seed=0)


def test_members_train_on_the_workers_and_match_a_sequential_fit(dask_client):
    kw = dict(member="ridge", k=4, member_params={"degree": 3})
    seq = EnsembleBackend(**kw)
    seq.fit(data())
    par = EnsembleBackend(**kw, client=dask_client)
    with get_task_stream(dask_client) as ts:
        hist = par.fit(data())
    ran_on = {t["worker"] for t in ts.data if t["key"].startswith("_fit_member_files")}
    assert len([t for t in ts.data if t["key"].startswith("_fit_member_files")]) == 4 and len(ran_on) == 2
    Z = np.random.default_rng(1).uniform(-1, 1, (50, 3)).astype(np.float32)
    np.testing.assert_array_equal(par.predict_members(Z), seq.predict_members(Z))
    assert len(hist.notes["members"]) == 4 and hist.val_loss
    assert "client" not in par.get_params()  # a run-time resource, never saved


def test_surrogate_train_with_a_client_saves_and_loads(dask_client):
    @phasm.surrogate(store="captures/ens.h5", mode="capture")
    def f(x: float, y: float) -> float:
        return x * x - y

    for x, y in np.random.default_rng(0).uniform(-1, 1, (300, 2)):
        f(float(x), float(y))
    f.train(backend="ensemble", member="ridge", k=3, member_params={"degree": 2}, client=dask_client)
    f.save("models/ens")
    g = phasm.surrogate(store="captures/ens.h5", model="models/ens", mode="model")(f.__wrapped__)
    f.mode = "model"
    assert g(0.5, 0.25) == f(0.5, 0.25)  # the saved and loaded members answer as the trained ones
    assert abs(g(0.5, 0.25) - 0.0) < 1e-3 and abs(g(-0.5, 0.5) - (-0.25)) < 1e-3
