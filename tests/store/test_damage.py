"""Damaged stores (issue 10, item 4 and the store's smaller defects): refused with the rows that
verify, never read back with zeros; `repair` keeps exactly the rows whose data is on disk."""

from __future__ import annotations

import os
import re
import shutil

import h5py
import numpy as np
import pytest
from known_store import check_rows, known_rows, known_spec, write_known

from phasm.errors import PhasmError
from phasm.store import CaptureStore, CaptureWriter, StoreDamaged, StoreError, repair

FRACTIONS = [0.75, 0.6, 0.5, 0.35, 0.25, 0.1, 0.05, 0.01]


def cut_copy(src, tmp_path, fraction, name="cut"):
    d = tmp_path / f"{name}-{fraction}"
    d.mkdir()
    dst = d / "s.h5"
    shutil.copy(src, dst)
    os.truncate(dst, int(os.path.getsize(src) * fraction))
    return dst


@pytest.mark.parametrize("fraction", FRACTIONS)
def test_truncated_store_is_refused_with_the_recoverable_count_then_repaired(known_store, tmp_path, fraction):
    path = cut_copy(known_store, tmp_path, fraction)
    with pytest.raises(StoreDamaged, match=r"truncated \(\d+ of \d+ bytes\): ((\d+) of 5000 committed rows are "
                                           r"recoverable; `phasm repair .*` keeps them|no rows are recoverable)") as info:
        CaptureStore(path)
    claimed = info.value.recoverable
    found = re.search(r"(\d+) of 5000", str(info.value))
    assert claimed == (int(found.group(1)) if found else 0)
    report = repair(path)
    assert report.rows_kept == claimed and report.files[0].backup.exists()
    if report.files[0].action == "set aside":  # cut inside its own structure: nothing to keep
        assert claimed == 0 and not path.exists()
        return
    assert report.files[0].action == "repaired" and report.rows_dropped == 5000 - claimed
    store = CaptureStore(path)  # the repaired store reads, and holds exactly the rows that verified
    assert len(store) == claimed
    ids = check_rows(*store.read())
    assert len(ids) == claimed
    assert repair(path).files[0].action == "ok"  # repairing again finds nothing to do


def test_a_cut_that_keeps_every_row_still_refuses_then_repair_keeps_all(tmp_path):
    path = tmp_path / "s.h5"
    write_known(path, 300, flush_rows=7)
    os.truncate(path, os.path.getsize(path) - 1000)  # the cut only takes unused chunk space
    with pytest.raises(StoreDamaged, match="300 of 300 committed rows are recoverable"):
        CaptureStore(path)
    assert repair(path).rows_kept == 300
    assert len(check_rows(*CaptureStore(path).read())) == 300


def test_flipped_data_byte_is_refused_on_read_and_repair_drops_only_its_block(tmp_path):
    path = tmp_path / "s.h5"
    write_known(path, 3000, flush_rows=50)
    with h5py.File(path, "r") as f:
        info = f["out/y"].id.get_chunk_info(0)
        block = int(f.attrs["block_rows"])
    with open(path, "r+b") as fh:  # flip one byte of row 2500's output
        fh.seek(info.byte_offset + 2500 * 8 + 3)
        b = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([b[0] ^ 0x40]))
    store = CaptureStore(path)  # the structure is sound: opening works ...
    check_rows(*store.read(0, 2450))  # ... rows whose commits verify read fine ...
    with pytest.raises(StoreDamaged, match=r"do not match their checksums.* of 3000 rows are recoverable"):
        store.read()  # ... and the damaged block is refused, never returned
    report = repair(path)
    ids = check_rows(*CaptureStore(path).read())
    # Exactly the flush holding the flipped byte is dropped (rows 2500..2549, ids 2501..2550).
    assert report.rows_kept == len(ids) == 2950 and block > 3000
    assert set(ids) == set(range(1, 3001)) - set(range(2501, 2551))


def test_uncommitted_and_inconsistent_lengths_trust_the_smaller_count(tmp_path):
    path = tmp_path / "s.h5"
    with CaptureWriter(path, known_spec(), flush_rows=1) as w:  # the last rows one flush each
        ins, outs = known_rows(np.arange(1, 1713))
        w.append_batch([ins[0][:1490], ins[1][:1490]], [outs[0][:1490], outs[1][:1490]])
        for r in range(1490, 1712):
            w.append_row([ins[0][r], ins[1][r]], [outs[0][r], outs[1][r]])
    with h5py.File(path, "a") as f:
        f["in/i"].resize(1711, axis=0)  # the case: 'in/i' has 1711 rows, 1712 committed
    store = CaptureStore(path)
    assert len(store) == 1711
    assert len(check_rows(*store.read())) == 1711
    with h5py.File(path, "a") as f:
        f["_rows"][0] = 1500  # datasets longer than the committed count
    assert len(CaptureStore(path)) == 1500
    with CaptureWriter(path, known_spec()) as w:  # capture goes on, from the consistent count
        w.append_row([np.int64(9001), np.array([4500.5, -9001, 1], np.float32)], [18003.0, np.int64(-1)])
    ids = check_rows(*CaptureStore(path).read())
    assert len(ids) == 1501 and ids[-1] == 9001


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda f: f["_rows"].__setitem__(0, -5), "committed row count is -5, which is negative"),
        (lambda f: f.attrs.__setitem__("phasm_format", "abc"), "phasm_format is 'abc', expected an integer"),
        (lambda f: f.attrs.__setitem__("phasm_format", 99), "format 99 is newer"),
        (lambda f: f.attrs.__setitem__("spec", "{not json"), "unreadable spec attribute"),
        (lambda f: f.attrs.__setitem__("spec", '{"function": 3, "variables": [{"name": 1}]}'), "unreadable spec"),
        (lambda f: f.attrs.__setitem__("spec_hash", "0000"), "spec_hash is '0000' but the spec hashes to"),
        (lambda f: f.attrs.__setitem__("block_rows", -1), "block_rows is -1"),
        (lambda f: f.__delitem__("_log"), "dataset '_log' is missing"),
    ],
)
def test_edited_attributes_are_one_line_store_errors(known_store, edit, message):
    with h5py.File(known_store, "a") as f:
        edit(f)
    with pytest.raises(StoreError, match=re.escape(message)) as info:
        CaptureStore(known_store)
    assert "\n" not in str(info.value)


def test_changed_block_size_never_reads_wrong_rows(known_store):
    with h5py.File(known_store, "a") as f:
        f.attrs["block_rows"] = 64
    store = CaptureStore(known_store)  # consistent on its face, but no block verifies
    assert len(store) <= 5000
    with pytest.raises(StoreDamaged):
        store.read()


def test_repair_sets_aside_garbage_shards_and_refuses_a_foreign_main_file(tmp_path):
    path = tmp_path / "s.h5"
    write_known(path, 50)
    sdir = tmp_path / "s.h5.shards"
    sdir.mkdir()
    (sdir / "empty.h5").write_bytes(b"")
    report = repair(path, dry_run=True)
    assert [f.action for f in report.files] == ["ok", "would set aside"] and (sdir / "empty.h5").exists()
    report = repair(path)
    assert [f.action for f in report.files] == ["ok", "set aside"]
    assert not (sdir / "empty.h5").exists() and (sdir / "empty.h5.unreadable").exists()
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(StoreError, match=r"not a phasm capture store .*; not repairing"):
        repair(foreign)


def test_repair_waits_for_a_live_writer(tmp_path):
    path = tmp_path / "s.h5"
    w = CaptureWriter(path, known_spec())
    try:
        with pytest.raises(StoreError, match="holds the main file"):
            repair(path)
    finally:
        w.close()
    assert repair(path).files[0].action == "ok"


def test_store_errors_are_phasm_errors():
    assert issubclass(StoreDamaged, StoreError) and issubclass(StoreError, PhasmError)


def write_format_1(path, n):
    """A store as phasm wrote it before format 2: no commit log, no checksums."""
    import json

    spec = known_spec()
    (ids, v), (y, k) = known_rows_for(n)
    with h5py.File(path, "w", libver="latest") as f:
        f.attrs.update({"phasm_format": 1, "phasm_version": "0.1.0", "function": spec.function,
                        "spec": json.dumps(spec.to_json()), "spec_hash": spec.hash, "created": "2026-01-01T00:00:00"})
        for name, data in (("in/i", ids), ("in/v", v), ("out/y", y), ("out/k", k)):
            f.create_dataset(name, data=data, maxshape=(None, *data.shape[1:]), chunks=(64, *data.shape[1:]))
        f["_rows"] = np.array([n], np.int64)


def known_rows_for(n):
    return known_rows(np.arange(1, n + 1))


def test_format_1_stores_still_read_and_capture_goes_on_in_a_shard(tmp_path):
    path = tmp_path / "old.h5"
    write_format_1(path, 500)
    assert len(check_rows(*CaptureStore(path).read())) == 500
    with CaptureWriter(path, known_spec()) as w:
        (ids, v), (y, k) = known_rows_for(501)
        w.append_row([ids[-1], v[-1]], [y[-1], k[-1]])
    assert w.file_path.parent.name == "old.h5.shards"  # format 1 files are read, not appended to
    assert len(check_rows(*CaptureStore(path).read())) == 501
    os.truncate(path, os.path.getsize(path) - 300)  # cut into the last chunk of the last dataset
    with pytest.raises(StoreDamaged, match="truncated"):
        CaptureStore(path)
    report = repair(path)
    kept = check_rows(*CaptureStore(path).read())
    assert report.files[0].action in ("repaired", "set aside") and len(kept) == report.rows_kept
