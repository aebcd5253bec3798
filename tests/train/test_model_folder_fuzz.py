"""Fuzzing model folders (issue 10): random edits of phasm.json (values, keys, types, deleted and added
entries, bytes) and of the weights files (byte flips, truncation, missing and extra files), for every
backend's folder at small size.

Two attackers: one who edits the folder (every edit that changes what phasm reads must be refused),
and one who also recomputes every digest ("reseal"; the loader's own checks must still give one
``ArtefactError`` line, or a model that answers with the right shapes or refuses with one phasm error
line when first asked).  Never a payload (hostile
``.pt2`` archives are among the edits), never a wrong answer, never another exception type.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from folder_forgery import read_meta, reseal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import phasm
from phasm.errors import ArtefactError, PhasmError
from phasm.train import ModelArtefact, fit_model

torch = pytest.importorskip("torch")

HAVE_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))
EXAMPLES = 40  # per backend in the default run; the slow run below tries many more


@dataclasses.dataclass
class Hit:
    x: float
    y: float


class Quadratic(torch.nn.Module):
    """A user's module: saved as a torch.export program (model.pt2)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(torch.cat([x, x * x], dim=1))


@dataclasses.dataclass
class Template:
    path: Path
    answer: Callable[[Path], np.ndarray]  # the model's answers on fixed inputs, loaded from a folder
    reference: np.ndarray


FLAT = phasm.Spec.from_declarations("fz.f", {"a": phasm.Scalar(), "b": phasm.Scalar()}, {"y": phasm.Scalar()})
PROBE = np.random.default_rng(7).uniform(-1, 1, (5, 2))
SETS = {"hits": phasm.each("hits", fields=["x", "y"], max_len=8)}


def flat_template(root: Path, name: str, backend: str, **params: Any) -> Template:
    X = np.random.default_rng(0).uniform(-1, 1, (80, 2))
    Y = (np.sin(X[:, 0]) + X[:, 1] ** 2)[:, None]
    art, _ = fit_model((X, Y), FLAT, backend=backend, seed=0, **params)
    path = art.save(root / name)

    def answer(p: Path) -> np.ndarray:
        return ModelArtefact.load(p, expect_spec=FLAT).predict(PROBE)

    return Template(path, answer, answer(path))


def sets_template(root: Path) -> Template:
    decl = dict(inputs=SETS, outputs={"s": phasm.Scalar()})

    @phasm.surrogate(**decl, store=root / "sets.h5", mode="capture", name="fz.total")
    def total(hits: list[Hit]) -> float:
        return float(sum(h.x + h.y for h in hits))

    rng = np.random.default_rng(0)
    events = [[Hit(*map(float, rng.uniform(-1, 1, 2))) for _ in range(int(rng.integers(1, 8)))] for _ in range(120)]
    for e in events:
        total(e)
    total.train(phi_hidden=(8,), rho_hidden=(8,), epochs=2, batch_size=32)
    path = total.save(root / "torch-sets")
    probe = events[:4]

    def answer(p: Path) -> np.ndarray:
        g = phasm.surrogate(lambda hits: 0.0, **decl, name="fz.total", mode="model")
        g.load(p)
        return np.array([g(e) for e in probe], np.float64)

    return Template(path, answer, answer(path))


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Template]:
    root = tmp_path_factory.mktemp("fuzz")
    small_torch = dict(hidden=(8,), epochs=2, batch_size=32)
    return {
        "ridge": flat_template(root, "ridge", "ridge", degree=2),
        "gp": flat_template(root, "gp", "gp", max_train=40),
        "ensemble": flat_template(root, "ensemble", "ensemble", member="torch", k=2, member_params=small_torch),
        "torch": flat_template(root, "torch", "torch", **small_torch),
        "torch-module": flat_template(root, "torch-module", "torch", model=Quadratic(), epochs=2, batch_size=32),
        "torch-sets": sets_template(root),
        **({"onnx": flat_template(root, "onnx", "onnx", **small_torch)} if HAVE_ONNX else {}),
    }


# -- edits -------------------------------------------------------------------------------------------

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.sampled_from([2**63, -(2**31), 0.0, -0.0])
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5)


def json_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += json_paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += json_paths(v, (*prefix, i))
    return out


def edit_json(meta: dict, data: st.DataObject) -> dict:
    path = data.draw(st.sampled_from(json_paths(meta)[1:]), label="path")
    parent = meta
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1]
    op = data.draw(st.sampled_from(["replace", "delete", "add", "wrap"]), label="op")
    if op == "replace":
        parent[key] = data.draw(VALUES, label="value")
    elif op == "delete":
        del parent[key]
    elif op == "wrap":
        parent[key] = [parent[key]]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(min_size=1, max_size=6), label="new key")] = data.draw(VALUES, label="value")
    else:
        parent.insert(key, data.draw(VALUES, label="value"))
    return meta


def flip_or_cut(raw: bytes, data: st.DataObject) -> bytes:
    if not raw:
        return b"\0"
    i = data.draw(st.integers(0, len(raw) - 1), label="at")
    if data.draw(st.booleans(), label="cut"):
        return raw[:i]
    b = bytearray(raw)
    b[i] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    return bytes(b)


def apply_edit(folder: Path, data: st.DataObject, marker: Path) -> str:
    meta = read_meta(folder)
    files = sorted(meta["files"])
    kinds = ["json", "json", "json", "json-bytes", "weights", "missing", "extra"]
    if "model.pt2" in files:
        kinds.append("hostile-pt2")
    kind = data.draw(st.sampled_from(kinds), label="edit")
    if kind == "json":
        (folder / "phasm.json").write_text(json.dumps(edit_json(meta, data)))
    elif kind == "json-bytes":
        p = folder / "phasm.json"
        p.write_bytes(flip_or_cut(p.read_bytes(), data))
    elif kind == "weights":
        p = folder / data.draw(st.sampled_from(files), label="file")
        p.write_bytes(flip_or_cut(p.read_bytes(), data))
    elif kind == "missing":
        (folder / data.draw(st.sampled_from(files), label="file")).unlink()
    elif kind == "extra":
        name = data.draw(st.sampled_from(["extra.bin", ".hidden", "phasm.json.bak", "sub"]), label="name")
        (folder / name).mkdir() if name == "sub" else (folder / name).write_bytes(b"x")
    else:
        import sys

        sys.path.insert(0, str(Path(__file__).parents[1] / "backends"))
        import pt2_attacks

        attack = data.draw(st.sampled_from(sorted(pt2_attacks.ATTACKS)), label="attack")
        (folder / "model.pt2").write_bytes(pt2_attacks.ATTACKS[attack](str(marker)))
    return kind


def check_folder(template: Template, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "m"
        shutil.copytree(template.path, folder)
        marker = Path(tmp) / "marker"
        kind = apply_edit(folder, data, marker)
        resealed = data.draw(st.booleans(), label="reseal")
        if resealed and (folder / "phasm.json").is_file():
            try:
                meta = read_meta(folder)
            except ValueError:
                meta = None  # bytes that are not JSON: nothing to reseal
            if isinstance(meta, dict):
                reseal(folder, meta)
        try:
            answer = template.answer(folder)
        except ArtefactError as exc:
            assert "\n" not in str(exc), str(exc)
        except PhasmError as exc:  # a forged model may load, then be refused when first asked (set models)
            assert resealed and "\n" not in str(exc), str(exc)
        else:
            if not resealed:  # loaded although edited: the edit changed nothing phasm reads
                np.testing.assert_array_equal(answer, template.reference, err_msg=f"edit {kind}")
            else:
                assert answer.shape == template.reference.shape
        assert not marker.exists(), f"payload ran ({kind})"


KINDS = ["ridge", "gp", "ensemble", "torch", "torch-module", "torch-sets", *(["onnx"] if HAVE_ONNX else [])]


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          deadline=None)
@given(data=st.data())
def test_edited_model_folders_are_refused_or_unchanged(kind: str, templates: dict[str, Template],
                                                       data: st.DataObject) -> None:
    check_folder(templates[kind], data)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          deadline=None)
@given(data=st.data())
def test_edited_model_folders_many_more(kind: str, templates: dict[str, Template], data: st.DataObject) -> None:
    check_folder(templates[kind], data)


def test_every_edit_of_a_normalisation_constant_is_refused(templates: dict[str, Template]) -> None:
    """Not left to chance: each constant of each backend's normalisation, nudged by one float32 step."""
    for kind in ("ridge", "torch", "ensemble"):
        meta = read_meta(templates[kind].path)
        for side in ("x", "y"):
            for field in ("mean", "scale"):
                for i in range(len(meta["normalisation"][side][field])):
                    with tempfile.TemporaryDirectory() as tmp:
                        folder = Path(tmp) / "m"
                        shutil.copytree(templates[kind].path, folder)
                        edited = read_meta(folder)
                        v = edited["normalisation"][side][field][i]
                        edited["normalisation"][side][field][i] = float(np.nextafter(np.float32(v), np.float32(np.inf)))
                        (folder / "phasm.json").write_text(json.dumps(edited))
                        with pytest.raises(ArtefactError, match="changed after the model was saved"):
                            templates[kind].answer(folder)
