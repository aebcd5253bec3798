"""Writers that start at the same time (issue 10, item 5): real threads and real processes on a
fresh store all succeed, and every row they wrote is read back exactly once."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from known_store import check_rows, known_rows, known_spec

import phasm
from phasm.store import CaptureStore, CaptureWriter

THREADS = 8
ROWS = 500


def run_threads(target, n=THREADS):
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def body(k):
        barrier.wait()
        try:
            target(k)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_threads_making_the_first_capture_calls_on_a_fresh_surrogate_lose_nothing(tmp_path):
    @phasm.surrogate(store=tmp_path / "fresh.h5", mode="capture", flush_rows=64)
    def f(x: float, k: float) -> float:
        return 2.0 * x + k

    run_threads(lambda k: [f(float(k * 10_000 + i), float(k)) for i in range(ROWS)])
    f.close()
    gc.collect()  # a writer the wrapper dropped in a race is flushed when collected
    ins, outs = CaptureStore(tmp_path / "fresh.h5").read()
    expected = sorted(k * 10_000 + i for k in range(THREADS) for i in range(ROWS))
    assert sorted(ins["x"].tolist()) == expected
    np.testing.assert_array_equal(outs["result"], 2.0 * ins["x"] + ins["k"])


def test_threads_opening_writers_on_one_fresh_path_all_succeed(tmp_path):
    path = tmp_path / "fresh.h5"

    def write(k):
        with CaptureWriter(path, known_spec(), flush_rows=50) as w:
            ins, outs = known_rows(np.arange(1 + k * ROWS, 1 + (k + 1) * ROWS))
            for r in range(ROWS):
                w.append_row([ins[0][r], ins[1][r]], [outs[0][r], outs[1][r]])

    run_threads(write)
    store = CaptureStore(path)
    assert sorted(check_rows(*store.read()).tolist()) == list(range(1, 1 + THREADS * ROWS))
    assert store.files[0] == path  # a writer takes the main file; one busy takes a shard
    assert 2 <= len(store.files) <= THREADS


def test_two_writers_in_one_process_never_share_the_main_file(tmp_path):
    path = tmp_path / "s.h5"
    a = CaptureWriter(path, known_spec())
    b = CaptureWriter(path, known_spec())
    assert a.file_path == path and b.file_path.parent.name == "s.h5.shards"
    a.close()
    c = CaptureWriter(path, known_spec())  # released: the next writer takes the main file again
    assert c.file_path == path
    b.close()
    c.close()


PROCESS_WRITER = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    sys.path.insert(0, sys.argv[4])
    from known_store import known_rows, known_spec
    from phasm.store import CaptureWriter

    path, k, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    open(f"{go}.ready{k}", "w").close()
    while not os.path.exists(go):  # every process opens its writers at the same instant
        pass
    for j in range(3):
        with CaptureWriter(path, known_spec(), flush_rows=25) as w:
            ins, outs = known_rows(np.arange(1 + k * 300 + j * 100, 1 + k * 300 + (j + 1) * 100))
            for r in range(100):
                w.append_row([ins[0][r], ins[1][r]], [outs[0][r], outs[1][r]])
    print("done", k)
    """
)


@pytest.mark.parametrize("n_procs", [4, pytest.param(8, marks=pytest.mark.slow)])
def test_processes_starting_on_a_fresh_store_all_succeed(tmp_path, n_procs):
    script = tmp_path / "writer.py"
    script.write_text(PROCESS_WRITER)
    path = tmp_path / "fresh.h5"
    here = os.path.dirname(__file__)
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, str(script), str(path), str(k), str(go), here],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(n_procs)]
    deadline = time.monotonic() + 120
    while not all(tmp_path.joinpath(f"go.ready{k}").exists() for k in range(n_procs)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    go.touch()
    results = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0 and "done" in out, err
    ids = check_rows(*CaptureStore(path).read())
    assert sorted(ids.tolist()) == list(range(1, 1 + n_procs * 300))


def test_a_forked_child_never_writes_its_parents_file(tmp_path):
    path = tmp_path / "s.h5"
    w = CaptureWriter(path, known_spec(), flush_rows=1000)
    ins, outs = known_rows(np.arange(1, 41))
    for r in range(20):
        w.append_row([ins[0][r], ins[1][r]], [outs[0][r], outs[1][r]])  # buffered in the parent
    pid = os.fork()
    if pid == 0:  # the child: its rows go to a shard of its own; the parent's 20 stay the parent's
        code = 0
        try:
            for r in range(20, 40):
                w.append_row([ins[0][r], ins[1][r]], [outs[0][r], outs[1][r]])
            w.close()
            code = 0 if w.file_path != path else 3
        except BaseException:  # noqa: BLE001 - the exit code reports it
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    w.close()
    store = CaptureStore(path)
    assert sorted(check_rows(*store.read()).tolist()) == list(range(1, 41)) and len(store.files) == 2


LIVE_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    sys.path.insert(0, sys.argv[2])
    from known_store import known_rows, known_spec
    from phasm.store import CaptureWriter

    with CaptureWriter(sys.argv[1], known_spec(), flush_rows=10) as w:
        print("open", flush=True)
        for start in range(1, 3001, 300):
            ins, outs = known_rows(np.arange(start, start + 300))
            for r in range(300):
                w.append_row([ins[0][r], ins[1][r]], [outs[0][r], outs[1][r]])
    """
)


def test_a_store_reads_consistently_while_another_process_writes_it(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(LIVE_WRITER)
    path = tmp_path / "live.h5"
    proc = subprocess.Popen([sys.executable, str(script), str(path), os.path.dirname(__file__)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "open", proc.stderr.read()
    seen, reads = 0, 0
    while proc.poll() is None or reads == 0:
        store = CaptureStore(path)  # a live writer's file: never refused, never a wrong row
        ids = check_rows(*store.read())
        assert len(ids) >= seen and sorted(ids.tolist()) == list(range(1, len(ids) + 1))
        seen, reads = len(ids), reads + 1
    assert proc.returncode == 0, proc.stderr.read()
    assert len(CaptureStore(path)) == 3000 and reads > 1
