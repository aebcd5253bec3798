"""`phasm info`, `phasm train` and `phasm repair` on broken stores, as a user runs them: one line, exit 1,
no traceback, and a repair that brings the store back."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

import phasm
from phasm.cli import app

runner = CliRunner()


def make_store(path="cap/lin.h5", n=400):
    @phasm.surrogate(store=path, mode="capture", name="demo.lin", flush_rows=50)
    def lin(x: float, y: float) -> float:
        return 3.0 * x - y

    for x, y in np.random.default_rng(0).uniform(-1, 1, (n, 2)):
        lin(float(x), float(y))
    lin.close()
    return Path(path)


def one_line_error(res, *fragments):
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert "Traceback" not in res.output
    for f in fragments:
        assert f in lines[0], lines[0]


def test_truncated_store_info_and_train_refuse_then_repair_brings_it_back():
    path = make_store()
    os.truncate(path, os.path.getsize(path) * 3 // 4)
    one_line_error(runner.invoke(app, ["info", str(path)]), "truncated", "committed rows are recoverable",
                   f"phasm repair {path}")
    one_line_error(runner.invoke(app, ["train", str(path), "--out", "m", "--backend", "ridge", "-q"]), "truncated")
    assert not Path("m").exists()
    res = runner.invoke(app, ["repair", str(path), "--dry-run"])
    assert res.exit_code == 0 and "would repair" in res.output, res.output
    res = runner.invoke(app, ["repair", str(path)])
    assert res.exit_code == 0 and "repaired" in res.output and "lin.h5.damaged" in res.output, res.output
    res = runner.invoke(app, ["info", str(path)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["repair", str(path)])
    assert res.exit_code == 0 and "nothing to repair" in res.output


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda f: f["_rows"].__setitem__(0, -3), "committed row count is -3, which is negative"),
        (lambda f: f.attrs.__setitem__("phasm_format", "abc"), "phasm_format is 'abc'"),
        (lambda f: f.attrs.__setitem__("spec", "]"), "unreadable spec attribute"),
    ],
)
def test_info_on_edited_stores_is_one_line(edit, fragment):
    path = make_store()
    with h5py.File(path, "a") as f:
        edit(f)
    one_line_error(runner.invoke(app, ["info", str(path)]), fragment)


def test_info_on_a_flipped_byte_is_one_line():
    path = make_store()
    with h5py.File(path, "r") as f:
        info = f["in/x"].id.get_chunk_info(0)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + 8 * 123)
        fh.write(b"\x7f")
    one_line_error(runner.invoke(app, ["info", str(path)]), "do not match their checksums", "rows are recoverable")
    res = runner.invoke(app, ["repair", str(path)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["info", str(path)])
    assert res.exit_code == 0 and "rows: 350" in res.output, res.output  # the flush holding row 123 is gone


def test_info_counts_skipped_shards():
    path = make_store()
    sdir = path.with_name("lin.h5.shards")
    sdir.mkdir()
    (sdir / "zero.h5").write_bytes(b"")
    (sdir / "junk.h5").write_bytes(b"\x00garbage" * 100)
    res = runner.invoke(app, ["info", str(path)])
    assert res.exit_code == 0, res.output
    assert "rows: 400 in 1 file(s)" in res.output and "skipped 2 file(s)" in res.output
    assert "zero.h5" in res.output and "junk.h5" in res.output


def test_repair_of_nothing_is_one_line():
    one_line_error(runner.invoke(app, ["repair", "nowhere.h5"]), "no capture store at nowhere.h5")


def test_info_of_a_ragged_variable_with_no_element_prints_no_inf(tmp_path):
    f = phasm.surrogate(lambda hits, b: float(b), name="tests.empty_hits", store=tmp_path / "e.h5", mode="capture",
                        inputs={"hits": phasm.each("hits", fields=["x", "y"], max_len=4), "b": phasm.Scalar()},
                        outputs={"s": phasm.Scalar()})
    for i in range(5):
        f([], float(i))
    f.close()
    res = runner.invoke(app, ["info", str(tmp_path / "e.h5")])
    assert res.exit_code == 0, res.output
    row = next(line for line in res.output.splitlines() if "in:hits" in line)
    assert "inf" not in row and "nan" not in row and " 0 " in row
