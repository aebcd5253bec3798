"""Model folder integrity (issue 10, item 3) and how folders are written (umask, atomic replace, refusals)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from folder_forgery import read_meta, reseal

import phasm
from phasm.errors import ArtefactError
from phasm.train import ModelArtefact, fit_model

SPEC = phasm.Spec.from_declarations("t.lin", {"a": phasm.Scalar(), "b": phasm.Scalar()}, {"y": phasm.Scalar()})


def lin(a: float, b: float) -> float:
    return 3.0 * a - b + 10.0


@pytest.fixture()
def model(tmp_path: Path) -> tuple[Path, ModelArtefact]:
    X = np.random.default_rng(0).uniform(-1, 1, (200, 2))
    art, _ = fit_model((X, lin(X[:, 0], X[:, 1])[:, None]), SPEC, backend="ridge", degree=1)
    return art.save(tmp_path / "m"), art


def write_meta(path: Path, meta: dict) -> None:
    (path / "phasm.json").write_text(json.dumps(meta, indent=1))


def one_line_error(call) -> str:
    with pytest.raises(ArtefactError) as err:
        call()
    assert "\n" not in str(err.value)
    return str(err.value)


def test_editing_one_normalisation_constant_is_refused(model) -> None:
    """The issue's case: a shifted mean gave wrong answers the gate accepted. Now the folder is refused."""
    path, art = model
    meta = read_meta(path)
    meta["normalisation"]["y"]["mean"][0] += 0.5
    write_meta(path, meta)
    msg = one_line_error(lambda: ModelArtefact.load(path, expect_spec=SPEC))
    assert "phasm.json was changed after the model was saved" in msg

    @phasm.surrogate(inputs={"a": phasm.Scalar(), "b": phasm.Scalar()}, outputs={"y": phasm.Scalar()})
    def f(a, b):
        return lin(a, b)

    with pytest.raises(ArtefactError, match="changed after the model was saved"):
        f.load(path)


def test_deleting_an_entry_from_files_is_refused(model) -> None:
    """The issue's second case: dropping the weights from `files` let altered weights load."""
    path, _ = model
    (path / "ridge.npz").write_bytes(b"altered")
    meta = read_meta(path)
    meta["files"] = {}
    write_meta(path, meta)
    assert "phasm.json was changed" in one_line_error(lambda: ModelArtefact.load(path))
    reseal(path, meta)  # even with the digest recomputed, the unlisted file is not part of the model
    assert "'ridge.npz' is not part of the model" in one_line_error(lambda: ModelArtefact.load(path))


def test_every_file_is_verified(model) -> None:
    path, _ = model
    w = path / "ridge.npz"
    good = w.read_bytes()
    w.write_bytes(good[:-1])
    assert "weights file ridge.npz was changed" in one_line_error(lambda: ModelArtefact.load(path))
    w.unlink()
    assert "weights file ridge.npz is missing" in one_line_error(lambda: ModelArtefact.load(path))
    w.write_bytes(good)
    (path / "notes.txt").write_text("hello")
    assert "'notes.txt' is not part of the model" in one_line_error(lambda: ModelArtefact.load(path))
    (path / "notes.txt").unlink()
    (path / "sub").mkdir()
    assert "'sub' is not part of the model" in one_line_error(lambda: ModelArtefact.load(path))
    (path / "sub").rmdir()
    w.unlink()
    other = path.parent / "elsewhere.npz"
    other.write_bytes(good)
    w.symlink_to(other)  # same bytes, but through a link: refused
    assert "is not a regular file" in one_line_error(lambda: ModelArtefact.load(path))
    w.unlink()
    w.write_bytes(good)
    assert ModelArtefact.load(path).digest == read_meta(path)["manifest"]["digest"]


def test_json_level_tampering(model) -> None:
    path, _ = model
    text = (path / "phasm.json").read_text()
    (path / "phasm.json").write_text(text[: len(text) // 2])
    assert "corrupted metadata" in one_line_error(lambda: ModelArtefact.load(path))
    (path / "phasm.json").write_text('{"format": "phasm-model", "format": "x"}')
    assert "key 'format' appears twice" in one_line_error(lambda: ModelArtefact.load(path))
    meta = json.loads(text)
    del meta["manifest"]
    write_meta(path, meta)
    assert "missing or malformed manifest digest" in one_line_error(lambda: ModelArtefact.load(path))


def test_folders_of_the_previous_format_are_refused_with_a_clear_message(model) -> None:
    path, _ = model
    meta = read_meta(path)
    meta["format_version"] = 1
    del meta["manifest"]
    write_meta(path, meta)
    msg = one_line_error(lambda: ModelArtefact.load(path))
    assert "format 1, written by an older phasm without an integrity manifest" in msg and "train and save" in msg
    meta["format_version"] = 99
    write_meta(path, meta)
    assert "newer than this phasm supports" in one_line_error(lambda: ModelArtefact.load(path))


def test_a_pinned_digest_refuses_any_other_model(model, tmp_path: Path) -> None:
    path, art = model
    digest = art.digest
    assert ModelArtefact.load(path, expect_digest=digest).digest == digest
    X = np.random.default_rng(1).uniform(-1, 1, (50, 2))
    other, _ = fit_model((X, X[:, :1]), SPEC, backend="ridge", degree=1)
    other.save(path)  # a consistent folder, but not the one pinned
    assert "is not the expected" in one_line_error(lambda: ModelArtefact.load(path, expect_digest=digest))


@pytest.mark.parametrize("umask, mode", [(0o022, 0o755), (0o077, 0o700), (0o002, 0o775)])
def test_saved_folders_follow_the_umask(umask: int, mode: int, tmp_path: Path) -> None:
    X = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    art, _ = fit_model((X, X[:, :1]), SPEC, backend="ridge", degree=1)
    old = os.umask(umask)
    try:
        path = art.save(tmp_path / "m")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    for f in path.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == mode & 0o666, f


def test_save_replaces_only_a_model_folder(model, tmp_path: Path) -> None:
    path, art = model
    art.save(path)  # a model folder: replaced
    assert sorted(p.name for p in path.iterdir()) == ["phasm.json", "ridge.npz"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    assert "not a phasm model folder; refusing to overwrite" in one_line_error(lambda: art.save(mine))
    (path / "thesis.tex").write_text("also mine")  # a model folder with something else in it: kept
    assert "refusing to overwrite" in one_line_error(lambda: art.save(path))
    assert (path / "thesis.tex").exists()
    (tmp_path / "a_file").write_text("x")
    assert "exists and is a file" in one_line_error(lambda: art.save(tmp_path / "a_file"))
    assert "a_file is a file, not a folder" in one_line_error(lambda: art.save(tmp_path / "a_file" / "m"))
    (tmp_path / "empty").mkdir()
    assert art.save(tmp_path / "empty") == tmp_path / "empty"


def test_save_leaves_the_old_model_when_writing_fails(model, monkeypatch: pytest.MonkeyPatch) -> None:
    path, art = model
    before = (path / "phasm.json").read_text()

    def broken(directory: Path) -> list[str]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(art.backend, "save", broken)
    with pytest.raises(OSError, match="No space left"):
        art.save(path)
    assert (path / "phasm.json").read_text() == before
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]
