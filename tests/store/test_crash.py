"""Crashes (issue 10, items 6 and 8): SIGKILL with a flush after every row never leaves the committed
count ahead of the data; a full disk is a StoreError saying how many rows are safe, never a segfault."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
from known_store import known_rows, known_spec

from phasm.errors import StoreError
from phasm.store import CaptureStore, CaptureWriter, StoreWarning

KILLED_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import phasm

    @phasm.surrogate(store=sys.argv[1], mode="capture", flush_rows=1)
    def f(a: float, v: np.ndarray) -> float:
        return 2.0 * a

    i = int(sys.argv[2])
    print("ready", flush=True)
    while True:
        f(float(i), np.full(4, float(i)))   # flush_rows=1: committed when the call returns
        print(i, flush=True)
        i += 1
    """
)


def kill_rounds(tmp_path, rounds: int, seed: int) -> None:
    script = tmp_path / "writer.py"
    script.write_text(KILLED_WRITER)
    path = tmp_path / "killed.h5"
    rng = random.Random(seed)
    acknowledged: set[int] = set()
    for k in range(rounds):
        proc = subprocess.Popen([sys.executable, str(script), str(path), str(k * 1_000_000)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        until = time.monotonic() + rng.uniform(0.05, 0.6)
        while time.monotonic() < until:
            line = proc.stdout.readline()
            if not line:
                break
            acknowledged.add(int(line))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StoreWarning)
            store = CaptureStore(path)  # never refused after a kill
            ins, outs = store.read()
        a = ins["a"]
        assert len(np.unique(a)) == len(a)
        assert acknowledged <= set(a.astype(np.int64).tolist()), "a committed row was lost"
        np.testing.assert_array_equal(outs["result"], 2.0 * a)
        np.testing.assert_array_equal(ins["v"], np.repeat(a[:, None], 4, axis=1))


def test_sigkill_with_a_flush_after_every_row_keeps_every_committed_row(tmp_path):
    kill_rounds(tmp_path, rounds=4, seed=1)


@pytest.mark.slow
def test_sigkill_many_times(tmp_path):
    kill_rounds(tmp_path, rounds=33, seed=2)


FULL_DISK_WRITER = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    import phasm
    from phasm.errors import StoreError

    @phasm.surrogate(store=sys.argv[1], mode="capture", flush_rows=int(sys.argv[3]))
    def f(a: float, v: np.ndarray) -> float:
        return 2.0 * a

    for i in range(int(sys.argv[4])):
        try:
            f(float(i), np.full(30, float(i)))
        except StoreError as exc:
            print("ERROR", exc, flush=True)
            break
    print("end of script", flush=True)
    """
)


def run_full_disk(tmp_path, limit, flush_rows, calls):
    script = tmp_path / "full.py"
    script.write_text(FULL_DISK_WRITER)
    path = tmp_path / "full.h5"
    proc = subprocess.run([sys.executable, str(script), str(path), str(limit), str(flush_rows), str(calls)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"  # -11 would be a segfault
    assert "end of script" in proc.stdout
    return path, proc


def read_safe(path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        ins, outs = CaptureStore(path).read()
    np.testing.assert_array_equal(ins["a"], np.arange(len(ins["a"])))
    np.testing.assert_array_equal(outs["result"], 2.0 * ins["a"])
    return ins["a"]


def test_full_disk_is_a_store_error_with_the_safe_rows_and_a_clean_exit(tmp_path):
    path, proc = run_full_disk(tmp_path, limit=3_000_000, flush_rows=100, calls=100_000)
    m = re.search(r"ERROR .*full\.h5: the disk is full \(File too large\): the (\d+) rows committed before are safe; "
                  r"100 captured rows were not written", proc.stdout)
    assert m, proc.stdout
    assert len(read_safe(path)) == int(m.group(1)) > 0


def test_full_disk_during_the_flush_at_exit_never_crashes(tmp_path):
    # 1500 rows stay buffered until exit; the flush at exit hits the limit.
    path, proc = run_full_disk(tmp_path, limit=400_000, flush_rows=100_000, calls=1500)
    assert "ERROR" not in proc.stdout
    assert re.search(r"phasm: .*the disk is full .*: the 0 rows committed before are safe; 1500 captured rows "
                     r"were not written", proc.stderr), proc.stderr
    assert len(read_safe(path)) == 0


def test_a_broken_writer_keeps_refusing_and_close_is_quiet(tmp_path, monkeypatch):
    w = CaptureWriter(tmp_path / "s.h5", known_spec())
    ins, outs = known_rows(np.arange(1, 3))
    w.append_row([ins[0][0], ins[1][0]], [outs[0][0], outs[1][0]])
    w.flush()

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(w._appender, "append", full)
    w.append_row([ins[0][1], ins[1][1]], [outs[0][1], outs[1][1]])
    with pytest.raises(StoreError, match=r"the disk is full \(No space left on device\): the 1 rows committed"):
        w.flush()
    with pytest.raises(StoreError, match="the disk is full"):
        w.append_row([ins[0][1], ins[1][1]], [outs[0][1], outs[1][1]])
    w.close()  # already reported: no second error
    assert w.broken and len(CaptureStore(tmp_path / "s.h5")) == 1
    assert os.path.exists(tmp_path / "s.h5")


def test_full_disk_when_creating_the_file_leaves_nothing_behind(tmp_path):
    path, proc = run_full_disk(tmp_path, limit=3000, flush_rows=10, calls=5)
    assert re.search(r"ERROR .*: cannot create a capture file \(the disk is full\): File too large", proc.stdout), proc.stdout
    leftovers = [p.name for p in tmp_path.rglob("*") if p.suffix in (".tmp", ".h5")]
    assert not leftovers, leftovers  # no half-made store file, no temporary file
