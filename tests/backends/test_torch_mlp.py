"""The torch backend: training, reproducibility, artefacts, custom modules, exported programs, CLI."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import phasm  # noqa: E402
from phasm.backends import BackendError, get_backend  # noqa: E402
from phasm.backends.torch_mlp import TorchBackend, build_mlp  # noqa: E402
from phasm.backends.torch_train import train_module  # noqa: E402
from phasm.store import CaptureStore, CaptureWriter  # noqa: E402
from phasm.train import ArrayData, fit_model  # noqa: E402
from phasm.train.artefact import ArtefactError, ModelArtefact  # noqa: E402
from phasm.train.data import StoreData  # noqa: E402

SPEC = phasm.Spec.from_declarations("t.f", {"a": phasm.Scalar(), "b": phasm.Scalar()}, {"y": phasm.Scalar()})


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small networks on a shared 2-core machine: one torch thread is many times faster than two fighting."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def smooth_data(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.5, 1.5, (n, 2))
    Y = (np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2)[:, None]
    return X, Y


@pytest.fixture(scope="module")
def trained() -> tuple[ModelArtefact, object]:
    X, Y = smooth_data()
    return fit_model((X, Y), SPEC, backend="torch", hidden=(32, 32), epochs=60, batch_size=32, lr=3e-3, seed=0)


def test_registered_and_quiet_import() -> None:
    assert get_backend("torch") is TorchBackend
    assert TorchBackend.requires == ("torch", "safetensors") and TorchBackend.extra == "torch"


def test_training_reduces_validation_loss_on_a_smooth_function(trained) -> None:
    art, res = trained
    h = res.history
    assert h.epochs == len(h.train_loss) == len(h.val_loss) >= 1
    assert h.device == "cpu"
    assert min(h.val_loss) < 0.01, h.val_loss[-5:]           # standardised units: < 1 % of the variance left
    assert min(h.val_loss) < 0.05 * h.val_loss[0]
    assert h.val_loss[h.best_epoch - 1] == min(h.val_loss)   # best epoch's weights are the ones kept
    m = res.metrics["y"]
    assert m["rmse"] < 0.06 and m["n"] == res.n_val
    assert m["rel_p50"] <= m["rel_p90"] <= m["rel_p99"]
    Xn, Yn = smooth_data(200, seed=5)                       # unseen points
    assert np.sqrt(np.mean((art.predict(Xn) - Yn) ** 2)) < 0.08
    assert art.training["epochs"] == h.epochs and art.training["train_loss"] == h.train_loss


def test_same_seed_same_weights_other_seed_different() -> None:
    X, Y = smooth_data(300)
    runs = [fit_model((X, Y), SPEC, backend="torch", hidden=(16,), epochs=5, seed=s)[0] for s in (3, 3, 4)]
    sd = [r.backend.module_.state_dict() for r in runs]
    assert all(torch.equal(sd[0][k], sd[1][k]) for k in sd[0])
    assert not all(torch.equal(sd[0][k], sd[2][k]) for k in sd[0])
    np.testing.assert_array_equal(runs[0].predict(X), runs[1].predict(X))


def test_save_load_round_trip_is_bitwise(trained, tmp_path: Path) -> None:
    art, _ = trained
    path = art.save(tmp_path / "m")
    assert (path / "torch_mlp.safetensors").is_file()
    loaded = ModelArtefact.load(path, expect_spec=SPEC)
    X, _ = smooth_data(100, seed=9)
    np.testing.assert_array_equal(loaded.predict(X), art.predict(X))
    meta = json.loads((path / "phasm.json").read_text())
    assert meta["backend"]["name"] == "torch" and meta["backend"]["params"]["hidden"] == [32, 32]
    assert meta["backend"]["version"] == torch.__version__


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(-3, 3), st.floats(-3, 3)), min_size=1, max_size=40))
def test_loaded_model_predicts_like_the_trained_one(tmp_path_factory, rows) -> None:
    art = _skip_model()
    path = tmp_path_factory.getbasetemp() / "skip-model"
    if not path.exists():
        art.save(path)
    loaded = _LOADED.setdefault("skip", ModelArtefact.load(path, expect_spec=_SPEC3))
    if loaded.inference.engine != art.inference.engine:  # each measured its engines at load: on a busy machine
        loaded.use_engine(art.inference.engine)          # they can choose differently; compare like with like
    X = np.array([[a, b, 7.0] for a, b in rows])
    np.testing.assert_array_equal(loaded.predict(X), art.predict(X))


_LOADED: dict[str, ModelArtefact] = {}
_SPEC3 = phasm.Spec.from_declarations("t.g", {"a": phasm.Scalar(), "b": phasm.Scalar(), "c": phasm.Scalar()},
                                      {"y": phasm.Array((2,))})


def _skip_model() -> ModelArtefact:
    if "skip-trained" not in _LOADED:
        X, _ = smooth_data(200)
        X = np.c_[X, np.full(len(X), 7.0)]                    # a constant input column: dropped from the net
        Y = np.c_[X[:, 0] - X[:, 1], np.sin(X[:, 0])]
        art, _ = fit_model((X, Y), _SPEC3, backend="torch", hidden=(8,), skip=True, epochs=3)
        _LOADED["skip-trained"] = art
    return _LOADED["skip-trained"]


def test_constant_inputs_are_dropped_and_skip_path_used() -> None:
    art = _skip_model()
    # The trainer sets the constant column aside: the network reads the two that vary.
    assert art.columns.constant == {2: 7.0}
    assert art.backend.state() == {"kind": "mlp", "n_in": 2, "n_out": 2, "n_used": 2}
    # Handed data with a constant column directly, the backend drops it itself.
    from phasm.backends.torch_mlp import TorchBackend
    from phasm.train.data import ArrayData

    X, _ = smooth_data(200)
    X = np.c_[X, np.full(len(X), 7.0)]
    net = TorchBackend(hidden=(8,), skip=True, epochs=3)
    net.fit(ArrayData(X, np.c_[X[:, 0] - X[:, 1], np.sin(X[:, 0])]))
    assert net.state() == {"kind": "mlp", "n_in": 3, "n_out": 2, "n_used": 2}
    with torch.inference_mode():
        x = torch.randn(5, 3)
        np.testing.assert_array_equal(net._plan(x).numpy(), net.module_(x).numpy())


def test_spec_mismatch_names_the_variable(trained, tmp_path: Path) -> None:
    art, _ = trained
    path = art.save(tmp_path / "m")
    other = phasm.Spec.from_declarations("t.f", {"a": phasm.Scalar(), "c": phasm.Scalar()}, {"y": phasm.Scalar()})
    with pytest.raises(ArtefactError, match="'b'|'c'"):
        ModelArtefact.load(path, expect_spec=other)

    @phasm.surrogate(inputs={"a": phasm.Scalar(), "b": phasm.Array((3,))}, outputs={"y": phasm.Scalar()})
    def f(a, b):
        return a

    with pytest.raises(ArtefactError, match="variable 'b': shape"):
        f.load(path)


def test_truncated_or_corrupted_weights_are_clear_errors(trained, tmp_path: Path) -> None:
    art, _ = trained
    path = art.save(tmp_path / "m")
    w = path / "torch_mlp.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtefactError, match="corrupted or truncated"):
        ModelArtefact.load(path)
    # Even with every digest recomputed (a forger who rewrites phasm.json), the backend refuses the bytes.
    from folder_forgery import reseal

    reseal(path)
    with pytest.raises(ArtefactError, match="cannot read weights"):
        ModelArtefact.load(path)
    # Well-formed weights of the wrong shape: named, not silently used.
    from safetensors.torch import save_file

    save_file({k: torch.zeros(3) for k in ("0.weight",)}, str(w))
    reseal(path)
    with pytest.raises(ArtefactError, match="do not fit"):
        ModelArtefact.load(path)


class TinyNet(torch.nn.Module):
    """A user's own module: quadratic features plus a small MLP."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.body = torch.nn.Sequential(torch.nn.Linear(4, 24), torch.nn.Tanh(), torch.nn.Linear(24, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([x, x * x], dim=1))


def test_custom_module_trains_saves_as_export_and_loads_without_the_class(tmp_path: Path) -> None:
    X, Y = smooth_data(400)
    net = TinyNet()
    art, res = fit_model((X, Y), SPEC, backend="torch", model=net, epochs=40, batch_size=32, lr=5e-3)
    assert res.history.val_loss[-1] < 0.5 * res.history.val_loss[0]
    assert res.metrics["y"]["rmse"] < 0.15
    assert art.backend.module_ is net                      # trained in place
    assert "model" not in art.backend.get_params()         # not written to JSON
    path = art.save(tmp_path / "custom")
    assert (path / "model.pt2").is_file() and not (path / "torch_mlp.safetensors").exists()
    loaded = ModelArtefact.load(path, expect_spec=SPEC)
    assert loaded.backend.state()["module"] == "GraphModule"
    np.testing.assert_allclose(loaded.predict(X[:50]), art.predict(X[:50]), rtol=1e-5, atol=1e-6)


def test_custom_module_of_wrong_width_is_refused() -> None:
    X, Y = smooth_data(50)
    with pytest.raises(BackendError, match=r"\(batch, 2\)"):
        fit_model((X, Y), SPEC, backend="torch", model=torch.nn.Linear(3, 1), epochs=1)
    with pytest.raises(BackendError, match=r"\(batch, 1\)"):
        fit_model((X, Y), SPEC, backend="torch", model=torch.nn.Linear(2, 4), epochs=1)


class Affine(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (2.0 * x[:, :1] - x[:, 1:2]) + 1.0


def _export(module: torch.nn.Module, n_in: int, path: Path) -> Path:
    prog = torch.export.export(module, (torch.zeros(2, n_in),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(prog, str(path))
    return path


def test_load_exported_program_trained_elsewhere(tmp_path: Path) -> None:
    pt2 = _export(Affine(), 2, tmp_path / "affine.pt2")

    @phasm.surrogate(inputs={"a": phasm.Scalar(), "b": phasm.Scalar()}, outputs={"y": phasm.Scalar()}, mode="model")
    def f(a, b):
        raise AssertionError("the model answers")

    f.load_exported(pt2)
    assert f(3.0, 1.0) == pytest.approx(6.0)              # batch 1 through a program exported with batch >= 2
    saved = f.save(tmp_path / "m")                         # the .pt2 travels into the model folder
    g = phasm.surrogate(lambda a, b: 0.0, inputs={"a": phasm.Scalar(), "b": phasm.Scalar()},
                        outputs={"y": phasm.Scalar()}, mode="model", model=saved)
    assert g(0.5, 2.0) == pytest.approx(0.0)


def test_exported_program_width_mismatch_and_pickled_entries_refused(tmp_path: Path) -> None:
    from phasm.train.exported import load_exported

    pt2 = _export(torch.nn.Linear(3, 1), 3, tmp_path / "lin3.pt2")
    with pytest.raises(BackendError, match="maps 3 -> 1 features; expected 2 -> 1"):
        load_exported(pt2, SPEC)
    # An archive that asks for an unpickled weight is refused before torch.export.load runs.
    bad = tmp_path / "pickled.pt2"
    with zipfile.ZipFile(pt2) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("_weights_config.json"):
                cfg = json.loads(data)
                next(iter(cfg["config"].values()))["use_pickle"] = True
                data = json.dumps(cfg).encode()
            zout.writestr(item, data)
    with pytest.raises(BackendError, match="pickle"):
        load_exported(bad, phasm.Spec.from_declarations("t.h", {"x": phasm.Array((3,))}, {"y": phasm.Scalar()}))
    (tmp_path / "junk.pt2").write_bytes(b"not a zip")
    with pytest.raises(BackendError, match="not a torch.export"):
        load_exported(tmp_path / "junk.pt2", SPEC)


def test_streams_from_a_store_larger_than_the_memory_budget(tmp_path: Path) -> None:
    X, Y = smooth_data(500)
    w = CaptureWriter(tmp_path / "s.h5", SPEC)
    w.append_batch([X[:, 0], X[:, 1]], [Y[:, 0]])
    w.close()
    data = StoreData(CaptureStore(tmp_path / "s.h5"), val_fraction=0.2, seed=0)
    est = TorchBackend(hidden=(32,), epochs=25, batch_size=32, lr=3e-3)
    hist = est.fit(data)
    assert hist.val_loss[-1] < 0.2 * hist.val_loss[0]


def test_train_module_is_reusable_and_bad_parameters_are_named() -> None:
    X, Y = smooth_data(200)
    data = ArrayData(X, Y, val_fraction=0.25, seed=0)
    net = build_mlp(2, 1, hidden=(16,), activation="tanh", seed=0)
    h = train_module(net, data, epochs=30, batch_size=32, lr=1e-2, patience=3, lr_schedule="plateau")
    assert h.epochs <= 30 and h.notes["best_val_loss"] == min(h.val_loss)
    with pytest.raises(BackendError, match="activation must be one of .* got 'swish2'"):
        TorchBackend(activation="swish2")
    with pytest.raises(BackendError, match="epochs must be >= 1, got 0"):
        train_module(net, data, epochs=0)
    with pytest.raises(BackendError, match="model must be a torch.nn.Module, got str"):
        TorchBackend(model="net")


def test_cli_train_and_info_with_torch(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from phasm.cli import app

    X, Y = smooth_data(300)
    w = CaptureWriter(tmp_path / "s.h5", SPEC)
    w.append_batch([X[:, 0], X[:, 1]], [Y[:, 0]])
    w.close()
    runner = CliRunner()
    r = runner.invoke(app, ["train", str(tmp_path / "s.h5"), "--out", str(tmp_path / "m"), "--epochs", "5",
                            "-p", "hidden=[16]", "--quiet"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["info", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    assert "backend torch" in r.output and '"hidden": [16]' in r.output and "5 epochs" in r.output


@pytest.mark.parametrize("skip", [False, True])
def test_folded_standardisation_matches_separate_passes(skip):
    """ModelArtefact.predict runs the torch plan with the standardisation folded into its first and
    last layers; it must agree with standardise -> backend -> unstandardise."""
    from phasm.train import fit_model

    rng = np.random.default_rng(3)
    X = np.column_stack([rng.uniform(2, 5, 600), rng.normal(10, 3, 600), np.full(600, 7.0)])  # one constant column
    Y = np.column_stack([X[:, 0] * X[:, 1], np.sin(X[:, 0]) + 100.0])
    spec = phasm.Spec.from_declarations("m.f", {"x": phasm.Array((3,))}, {"y": phasm.Array((2,))})
    art, _ = fit_model((X, Y), spec, backend="torch", hidden=(16, 16), epochs=3, skip=skip, seed=0)
    art.use_engine("torch")  # the backend's own plan (not onnxruntime)
    folded = art.predict(X[:50].astype(np.float32))
    kept = art.columns.kept
    norms = (art.x_norm.mean[kept], art.x_norm.scale[kept], art.y_norm.mean, art.y_norm.scale)
    assert art.backend.fold_normalisation(*norms) is not None  # the folded plan is in use
    separate = art.y_norm.inverse(art.backend.predict(art.backend_inputs(X[:50])))
    np.testing.assert_allclose(folded, separate, rtol=2e-5, atol=2e-5 * np.abs(separate).max())


def test_folding_is_refused_when_the_offset_would_cost_precision():
    from phasm.train import fit_model

    rng = np.random.default_rng(4)
    X = rng.normal(1e5, 1.0, (300, 1))  # |mean| / std = 1e5: folding would cancel digits in float32
    spec = phasm.Spec.from_declarations("m.g", {"x": phasm.Scalar()}, {"y": phasm.Scalar()})
    art, _ = fit_model((X, X - 1e5), spec, backend="torch", hidden=(8,), epochs=2, seed=0)
    art.use_engine("torch")
    art.predict(X[:5].astype(np.float32))
    assert art.backend.fold_normalisation(art.x_norm.mean, art.x_norm.scale, art.y_norm.mean, art.y_norm.scale) is None
