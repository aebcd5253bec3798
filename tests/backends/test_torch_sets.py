"""Backend torch-sets: the set encoder is permutation invariant, ignores padding, and its numpy
small-batch path agrees with the torch path; weights round-trip through save/load."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from phasm.backends.registry import make_backend  # noqa: E402
from phasm.bindings.ragged import RaggedArray, RaggedInputs  # noqa: E402
from phasm.train.ragged import RaggedData, encode  # noqa: E402


def data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    sets = RaggedArray.from_list([rng.normal(size=(m, 2)) for m in rng.integers(0, 9, n)], (2,))
    X = RaggedInputs(rng.normal(size=(n, 1)).astype(np.float32), {"hits": sets})
    Y = np.array([[s[:, 0].sum() if len(s) else 0.0, len(s)] for s in sets.to_list()], np.float32)
    return RaggedData(X, Y, val_fraction=0.2, seed=0)


@pytest.mark.parametrize("activation", ["silu", "relu", "tanh", "gelu"])
def test_numpy_and_torch_paths_agree_and_padding_is_ignored(activation):
    d = data()
    b = make_backend("torch-sets", phi_hidden=(16, 16), rho_hidden=(16,), epochs=2, activation=activation)
    b.fit(d)
    X = d._Xt.take(np.arange(50))
    torch_out = b._run(encode(X))
    assert np.allclose(b.predict(X), torch_out, atol=1e-5)
    assert np.allclose(b._run(encode(X, length=20)), torch_out, atol=1e-5)  # more padding, same answer
    big = d._Xt  # > 64 rows: torch path, sorted by length in chunks
    assert np.allclose(b.predict(big)[:50], torch_out, atol=1e-5)


def test_permutation_invariance_and_save_load(tmp_path):
    d = data()
    b = make_backend("torch-sets", phi_hidden=(16, 16), rho_hidden=(16,), epochs=3)
    hist = b.fit(d)
    assert hist.epochs == 3 and len(hist.val_loss) == 3
    X = d._Xt.take(np.arange(5))
    rev = RaggedInputs(X.fixed, {"hits": RaggedArray.from_list([r[::-1] for r in X.sets["hits"].to_list()], (2,))})
    assert np.allclose(b.predict(X), b.predict(rev), atol=1e-5)
    files = b.save(tmp_path)
    loaded = type(b).load(tmp_path, b.get_params(), b.state())
    assert files == ["sets.safetensors"] and np.array_equal(loaded.predict(X), b.predict(X))


def test_flat_backends_refuse_ragged_specs_with_a_clear_error():
    import phasm
    from phasm.train.ragged import fit_ragged_model

    spec = phasm.Spec.from_declarations("m.f", {"hits": phasm.each("hits", ["x", "y"])}, {"y": phasm.Scalar()})
    d = data(50)
    X = RaggedInputs(np.empty((50, 0), np.float32), {"hits": RaggedArray.from_list([np.ones((2, 2))] * 50)})
    with pytest.raises(ValueError, match="backend 'ridge' takes flat matrices only.*use backend='torch-sets'"):
        fit_ragged_model((X, np.ones((50, 1), np.float32)), spec, backend="ridge")
    assert d.n_in == 1 + 2


def test_validation_is_encoded_slice_by_slice_with_the_same_loss():
    from phasm.backends.torch_train import evaluate

    d = data(400)
    b = make_backend("torch-sets", phi_hidden=(8, 8), rho_hidden=(8,), epochs=1)
    b.fit(d)
    Xv, Yv = d.validation()
    assert len(Xv) == d.n_val and Xv[0:3].shape[0] == 3
    widths = {Xv[s : s + 16].shape[1] for s in range(0, len(Xv), 16)}
    assert len(widths) > 1  # sorted by length: short slices are padded less
    dev = torch.device("cpu")
    assert evaluate(b.module_, Xv, Yv, dev, batch_size=16) == pytest.approx(evaluate(b.module_, np.asarray(Xv), Yv, dev), rel=1e-5)


def test_streamed_store_data_matches_in_memory_and_trains(tmp_path):
    import phasm
    from phasm.store import CaptureStore, CaptureWriter
    from phasm.train.ragged import RaggedStoreData, ragged_matrices, ragged_training_data

    spec = phasm.Spec.from_declarations("m.f", {"E": phasm.Scalar(), "hits": phasm.each("hits", ["x", "y"])},
                                        {"s": phasm.Scalar()})
    rng = np.random.default_rng(0)
    with CaptureWriter(tmp_path / "c.h5", spec) as w:
        for i in range(700):
            h = rng.normal(size=(int(rng.integers(0, 6)), 2))
            w.append_row([float(rng.normal()), h], [float(h.sum()) if i != 5 else float("nan")])
    store = CaptureStore(tmp_path / "c.h5")
    streamed = RaggedStoreData(store, spec, val_fraction=0.2, seed=0, block_rows=128)
    memory = RaggedData(*ragged_matrices(spec, *store.read()), val_fraction=0.2, seed=0)
    assert (streamed.n_train, streamed.n_val, streamed.dropped_nonfinite) == (memory.n_train, memory.n_val, 1)
    assert np.allclose(streamed.x_norm.mean, memory.x_norm.mean, atol=1e-5)
    assert np.allclose(streamed.x_norm.scale, memory.x_norm.scale, atol=1e-5)
    assert np.allclose(streamed.y_norm.mean, memory.y_norm.mean, atol=1e-5)
    rows = sum(len(y) for _, y in streamed.train_batches(32, seed=1))
    assert rows == streamed.n_train
    assert isinstance(ragged_training_data(store, spec, max_memory_bytes=1000), RaggedStoreData)
    assert isinstance(ragged_training_data(store, spec), RaggedData)
    b = make_backend("torch-sets", phi_hidden=(8, 8), rho_hidden=(8,), epochs=2)
    hist = b.fit(streamed)
    assert hist.epochs == 2 and np.isfinite(hist.val_loss).all()
