"""Files beside a store (issue 10, items 7 and 9): garbage in the shard folder is skipped with a
warning naming it and never blocks capture; phasm never creates a file through a planted link."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
from known_store import check_rows, known_rows, known_spec, write_known

import phasm
from phasm.store import CaptureStore, CaptureWriter, StoreError, StoreWarning


def plant_garbage(sdir):
    sdir.mkdir(exist_ok=True)
    (sdir / "zero.h5").write_bytes(b"")
    (sdir / "noise.h5").write_bytes(os.urandom(5000))
    (sdir / "text.h5").write_text("rows,1,2,3\n")
    with h5py.File(sdir / "foreign.h5", "w") as f:
        f["x"] = np.arange(3)
    return {"zero.h5", "noise.h5", "text.h5", "foreign.h5"}


def test_garbage_shards_are_skipped_with_a_warning_naming_each(tmp_path):
    path = tmp_path / "s.h5"
    write_known(path, 30)
    write_known(path.with_name("other.h5"), 1)
    names = plant_garbage(tmp_path / "s.h5.shards")
    with pytest.warns(StoreWarning) as caught:
        store = CaptureStore(path)
    warned = " ".join(str(w.message) for w in caught)
    assert all(n in warned for n in names)
    assert {p.name for p, _ in store.skipped} == names
    assert len(store) == 30 and len(check_rows(*store.read())) == 30


def test_garbage_shards_never_block_capture(tmp_path):
    path = tmp_path / "s.h5"
    plant_garbage(tmp_path / "s.h5.shards")
    holder = CaptureWriter(path, known_spec())  # holds the main file: the next writers need shards

    @phasm.surrogate(store=path, mode="capture", flush_rows=10)
    def f(x: float) -> float:
        return x + 1.0

    with pytest.raises(phasm.SpecError):  # another spec than the store's: still named, not hidden
        f(1.0)
    holder.close()
    ins, outs = known_rows(np.arange(1, 21))
    with CaptureWriter(path, known_spec()) as w:
        for r in range(20):
            w.append_row([ins[0][r], ins[1][r]], [outs[0][r], outs[1][r]])
    with pytest.warns(StoreWarning):
        assert len(check_rows(*CaptureStore(path).read())) == 20


def test_a_store_of_shards_that_are_all_garbage_is_one_clear_error(tmp_path):
    plant_garbage(tmp_path / "s.h5.shards")
    with pytest.warns(StoreWarning), pytest.raises(StoreError, match=r"no readable capture files \(4 skipped"):
        CaptureStore(tmp_path / "s.h5")


def test_no_file_is_created_through_a_planted_lock_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, tmp_path / "s.h5.lock")
    with pytest.raises(StoreError, match=r"s\.h5\.lock: refusing to use a lock file through a symbolic link"):
        CaptureWriter(tmp_path / "s.h5", known_spec())
    assert victim.read_text() == "precious" and not (tmp_path / "s.h5").exists()
    dangling = tmp_path / "t.h5.lock"
    os.symlink(tmp_path / "created-by-link", dangling)
    with pytest.raises(StoreError, match="symbolic link"):
        CaptureWriter(tmp_path / "t.h5", known_spec())
    assert not (tmp_path / "created-by-link").exists()


def test_no_shard_is_created_through_a_planted_shard_folder_link(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, tmp_path / "s.h5.shards")
    with pytest.raises(StoreError, match=r"s\.h5\.shards: refusing to use the shard folder through a symbolic link"):
        CaptureWriter(tmp_path / "s.h5", known_spec(), shard="rank3")
    holder = CaptureWriter(tmp_path / "s.h5", known_spec())  # the main file is fine ...
    with pytest.raises(StoreError, match="symbolic link"):
        CaptureWriter(tmp_path / "s.h5", known_spec())  # ... a second writer needs a shard: refused
    holder.close()
    assert list(elsewhere.iterdir()) == []


def test_planted_shard_links_are_not_read(tmp_path):
    path = tmp_path / "s.h5"
    write_known(path, 10)
    other = tmp_path / "other.h5"
    write_known(other, 10, first=100)
    sdir = tmp_path / "s.h5.shards"
    sdir.mkdir()
    os.symlink(other, sdir / "evil.h5")
    with pytest.warns(StoreWarning, match="evil.h5: skipped: a symbolic link"):
        store = CaptureStore(path)
    assert sorted(check_rows(*store.read()).tolist()) == list(range(1, 11))


def test_a_store_path_the_user_passed_as_a_link_is_followed(tmp_path):
    real = tmp_path / "data"
    real.mkdir()
    link = tmp_path / "s.h5"
    os.symlink(real / "real.h5", link)  # dangling until the writer creates the file
    write_known(link, 5)
    assert (real / "real.h5").is_file() and link.is_symlink()
    assert len(check_rows(*CaptureStore(link).read())) == 5


def test_an_explicit_shard_name_cannot_escape_the_shard_folder(tmp_path):
    for bad in ("../escape", "a/b", ".hidden", ""):
        with pytest.raises(StoreError, match="shard: expected a plain file name"):
            CaptureWriter(tmp_path / "s.h5", known_spec(), shard=bad)
    assert not (tmp_path / "escape.h5").exists()
