"""A ``.pt2`` never runs code on load (issue 10, item 1).

Each archive in ``pt2_attacks.ATTACKS`` makes plain torch 2.13 run a payload (shown in a subprocess by
``test_plain_torch_runs_the_payload``); phasm refuses it, or ignores the part torch would have
unpickled, and the payload's marker file never appears.
"""

from __future__ import annotations

import io
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import phasm  # noqa: E402
from phasm.backends import BackendError  # noqa: E402
from phasm.backends.pt2_archive import clean_pt2  # noqa: E402
from phasm.backends.torch_export import load_pt2  # noqa: E402

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import pt2_attacks as A  # noqa: E402

# The attacks plain torch.export.load (+ .module() and one call) really executes, in torch 2.13.
TORCH_RUNS = {"duplicate_constants_opaque", "duplicate_constants_use_pickle", "weights_use_pickle",
              "legacy_pickled_weights", "sample_inputs_pickle", "sympy_expression", "guards_code",
              "treespec_imports_module"}
# Attacks whose only hostile part is one phasm never reads: the program loads, the payload does not run.
IGNORED = {"sample_inputs_pickle"}
MARKER_MODULE = "phasm_pt2_marker_module"


def plant_module(folder: Path, marker: Path) -> None:
    """A module on sys.path that leaves the marker when imported (for the tree-spec import attack)."""
    (folder / f"{MARKER_MODULE}.py").write_text(f"open({str(marker)!r}, 'w')\nf = dict\n")


@pytest.mark.parametrize("name", sorted(TORCH_RUNS))
def test_plain_torch_runs_the_payload(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attacks are real: unguarded torch executes each of these payloads (so the refusals below mean
    something). The payloads only create a marker file, so running them here is harmless."""
    marker = tmp_path / "marker"
    plant_module(tmp_path, marker)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, MARKER_MODULE, raising=False)
    try:
        torch.export.load(io.BytesIO(A.ATTACKS[name](str(marker)))).module()(torch.ones(4, 3))
    except Exception:
        pass  # most payloads break the program after they ran
    finally:
        sys.modules.pop(MARKER_MODULE, None)
    assert marker.exists()


@pytest.mark.parametrize("name", sorted(A.ATTACKS))
def test_phasm_never_runs_the_payload(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "marker"
    plant_module(tmp_path, marker)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / f"{name}.pt2"
    path.write_bytes(A.ATTACKS[name](str(marker)))
    if name in IGNORED:
        prog = load_pt2(path)
        prog.module(check_guards=False)(torch.ones(4, 3))
    else:
        with pytest.raises(BackendError) as err:
            load_pt2(path)
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(str(path))
    assert not marker.exists()


def test_the_issue_example_through_load_exported(tmp_path: Path) -> None:
    """Two constants configs, the first (torch's) unpickling a payload: refused by fn.load_exported."""
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt2"
    path.write_bytes(A.duplicate_constants_opaque(str(marker)))

    @phasm.surrogate(inputs={"x": phasm.Array((3,))}, outputs={"y": phasm.Array((2,))})
    def f(x):
        return x[:2]

    with pytest.raises(BackendError, match="two entries named '.*model_constants_config.json'"):
        f.load_exported(path)
    assert not marker.exists()


def test_clean_program_loads_with_every_unpickler_disabled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loading path cannot unpickle: with pickle and torch.load made to fail, a plain program loads."""
    torch.manual_seed(0)
    module = A.Scaled()
    prog = torch.export.export(module, (torch.zeros(2, 3),), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    path = tmp_path / "m.pt2"
    torch.export.save(prog, str(path))

    def refuse(*a, **k):
        raise AssertionError("an unpickler was called")

    for obj, attr in ((pickle, "loads"), (pickle, "load"), (pickle, "Unpickler"), (torch, "load"),
                      (torch._C, "_pickle_load_obj")):
        monkeypatch.setattr(obj, attr, refuse)
    loaded = load_pt2(path).module(check_guards=False)
    x = torch.randn(5, 3)
    np.testing.assert_allclose(loaded(x).detach().numpy(), module(x).detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("position", ["first", "last"])
def test_a_duplicate_of_any_entry_is_refused(position: str) -> None:
    entries = A.read_entries(A.clean_archive())
    for name, data in entries:
        twin = (name, data + b" ")
        archive = A.write_entries([twin, *entries] if position == "first" else [*entries, twin])
        with pytest.raises(BackendError, match="two entries named"):
            clean_pt2(archive, "a.pt2")


@pytest.mark.parametrize("extra, match", [
    ("archive/notes.txt", "does not know it"),
    ("other/data/weights/weight_0", "not a file under the archive's root"),
    ("archive/../x", "not a file under the archive's root"),
    ("archive/models/second.json", "the program named 'model' only"),
    ("archive/data/constants/opaque_obj_0", "pickled custom object"),
    ("archive/data/constants/model.pt", "pickled"),
    ("archive/data/aotinductor/model/x.cpp", "AOTInductor"),
])
def test_entries_phasm_does_not_read_are_refused(extra: str, match: str) -> None:
    entries = A.read_entries(A.clean_archive())
    root = entries[0][0].split("/", 1)[0]
    archive = A.write_entries([*entries, (extra.replace("archive", root, 1), b"x")])
    with pytest.raises(BackendError, match=match):
        clean_pt2(archive, "a.pt2")


@pytest.mark.parametrize("target, match", [
    ("torch.ops.aten.from_file.default", "touches files or process state"),
    ("torch.ops.higher_order.cond", "aten operators only"),
    ("builtins.eval", "aten operators only"),
    ("torch.ops.aten.__class__.x", "not an aten operator"),
])
def test_graph_targets_outside_aten_are_refused(target: str, match: str) -> None:
    entries = A.read_entries(A.clean_archive())
    model = json.loads(next(d for n, d in entries if n.endswith("models/model.json")))
    model["graph_module"]["graph"]["nodes"][0]["target"] = target
    archive = A.write_entries([(n, json.dumps(model).encode() if n.endswith("models/model.json") else d)
                               for n, d in entries])
    with pytest.raises(BackendError, match=match):
        clean_pt2(archive, "a.pt2")


def test_guards_of_derived_dimensions_still_load(tmp_path: Path) -> None:
    """Real guards (size arithmetic) pass the guard grammar; the program loads and runs."""

    class Pairs(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(-1, 2, x.shape[1]).sum(1).repeat(2, 1)

    prog = torch.export.export(Pairs(), (torch.zeros(4, 3),), dynamic_shapes=({0: 2 * torch.export.Dim("h", max=512)},))
    assert prog._guards_code  # the program carries guard source
    path = tmp_path / "pairs.pt2"
    torch.export.save(prog, str(path))
    out = load_pt2(path).module(check_guards=False)(torch.ones(6, 3))
    assert tuple(out.shape) == (6, 3) and float(out[0, 0]) == 2.0


@pytest.mark.slow  # torch.cond export: ~5 s; the refusal itself is covered by test_graph_targets_outside_aten_are_refused
def test_a_custom_module_that_would_not_load_back_is_refused_when_saved(tmp_path: Path) -> None:
    """torch.cond is a higher-order operator: saving such a module says so instead of writing a model that fails later."""
    from phasm.train import fit_model

    class Branchy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cond(x.sum() > 0, lambda v: self.lin(v), lambda v: -self.lin(v), (x,))

    spec = phasm.Spec.from_declarations("t.f", {"a": phasm.Scalar(), "b": phasm.Scalar()}, {"y": phasm.Scalar()})
    X = np.random.default_rng(0).normal(size=(64, 2))
    art, _ = fit_model((X, X[:, :1]), spec, backend="torch", model=Branchy(), epochs=1)
    with pytest.raises(BackendError, match="cannot be saved as a plain program.*aten operators only"):
        art.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_truncated_and_flipped_archives_are_one_line_errors(tmp_path: Path) -> None:
    data = A.clean_archive()
    rng = np.random.default_rng(1)
    for cut in (0, 10, len(data) // 3, len(data) - 30):
        (tmp_path / "t.pt2").write_bytes(data[:cut])
        with pytest.raises(BackendError):
            load_pt2(tmp_path / "t.pt2")
    outcomes = set()
    for _ in range(40):
        b = bytearray(data)
        i = int(rng.integers(len(b)))
        b[i] ^= 1 << int(rng.integers(8))
        (tmp_path / "f.pt2").write_bytes(bytes(b))
        try:
            load_pt2(tmp_path / "f.pt2")
            outcomes.add("loaded")  # a flip in a byte nothing reads (zip comment, timestamps, sample inputs)
        except BackendError as exc:
            assert "\n" not in str(exc)
            outcomes.add("refused")
    assert "refused" in outcomes


def test_a_model_folder_carrying_a_hostile_pt2_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A forger who swaps model.pt2 in a saved folder and recomputes every digest still gets nothing run."""
    import shutil

    from folder_forgery import reseal

    from phasm.errors import ArtefactError
    from phasm.train import ModelArtefact, fit_model

    spec = phasm.Spec.from_declarations("t.g", {"x": phasm.Array((3,))}, {"y": phasm.Array((2,))})
    X = np.random.default_rng(0).normal(size=(64, 3))
    art, _ = fit_model((X, X[:, :2]), spec, backend="torch", model=A.Scaled(), epochs=1)
    saved = art.save(tmp_path / "model")
    marker = tmp_path / "marker"
    plant_module(tmp_path, marker)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name, attack in sorted(A.ATTACKS.items()):
        folder = tmp_path / name
        shutil.copytree(saved, folder)
        (folder / "model.pt2").write_bytes(attack(str(marker)))
        reseal(folder)
        if name in IGNORED:
            ModelArtefact.load(folder, expect_spec=spec)  # loads: the pickled sample inputs are never read
        else:
            with pytest.raises(ArtefactError) as err:
                ModelArtefact.load(folder, expect_spec=spec)
            assert "\n" not in str(err.value) and str(folder) in str(err.value)
        assert not marker.exists(), name
