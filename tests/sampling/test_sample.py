"""phasm.sample on a Dask LocalCluster (2 worker processes): rows, shards, failures, resume, kills."""

from __future__ import annotations

import math
import os
import signal
import threading
import time

import numpy as np
import pytest
import sample_targets as st

import phasm
from phasm.errors import SampleError, SpecError
from phasm.sampling import SampleRun, design_index, read_progress, sample
from phasm.store import CaptureStore

SPACE = {"x": (0.0, 1.0), "y": (1.0, 100.0, "log")}


def stored(path):
    store = CaptureStore(path)
    ins, outs = store.read()
    return store, ins, outs


def test_in_process_run_stores_every_row_with_its_design_index():
    res = sample(st.quick, SPACE, 40, store="captures/q.h5", workers=0, progress=False)
    assert (res.rows, res.new_rows, res.failed, res.pending, res.duplicates) == (40, 40, {}, 0, 0)
    store, ins, outs = stored("captures/q.h5")
    assert len(store) == 40
    np.testing.assert_array_equal(outs["result"], ins["x"] ** 2 + ins["y"])
    run = SampleRun.load("captures/q.h5")
    idx = design_index("captures/q.h5")
    assert sorted(idx.tolist()) == list(range(40))
    np.testing.assert_array_equal(run.points[idx], np.stack([ins["x"], ins["y"]], axis=1))  # index -> the row's input
    assert ((ins["y"] >= 1) & (ins["y"] <= 100)).all() and np.median(ins["y"]) < 20  # log-spread


def test_on_the_cluster_each_worker_writes_its_shard_one_logical_store(dask_client):
    res = sample(st.sleepy, SPACE, 48, client=dask_client, store="captures/s.h5", progress=False)
    assert (res.rows, res.failed, res.duplicates, res.workers) == (48, {}, 0, 2)
    store, ins, outs = stored("captures/s.h5")
    assert len(store) == 48 and len(store.files) == 2  # one shard per worker, read as one store
    np.testing.assert_array_equal(outs["result"], ins["x"] ** 2 + ins["y"])
    assert sorted(design_index("captures/s.h5").tolist()) == list(range(48))
    # A second call resumes: nothing to do, nothing duplicated; a larger n extends the Sobol design.
    again = sample(st.sleepy, SPACE, 48, client=dask_client, store="captures/s.h5", progress=False)
    assert (again.rows, again.new_rows) == (48, 0)
    more = sample(st.sleepy, SPACE, 64, client=dask_client, store="captures/s.h5", progress=False)
    assert (more.rows, more.new_rows, more.duplicates) == (64, 16, 0)
    assert np.array_equal(SampleRun.load("captures/s.h5").points[:48], SampleRun.load("captures/s.h5").points[:48])
    assert len(CaptureStore("captures/s.h5")) == 64


def test_failures_are_recorded_per_row_and_not_retried(dask_client):
    res = sample(st.flaky, {"x": (0.0, 1.0), "y": (0.0, 1.0)}, 64, client=dask_client, store="captures/f.h5",
                 progress=False)
    run = SampleRun.load("captures/f.h5")
    x, y = run.points[:, 0], run.points[:, 1]
    raising, nan = set(np.flatnonzero(x > 0.8).tolist()), set(np.flatnonzero((x <= 0.8) & (y < 0.2)).tolist())
    assert raising and nan
    assert set(res.failed) == raising | nan
    assert all(res.failed[i].startswith("ValueError: no convergence at x=") for i in raising)
    assert all(res.failed[i] == "non-finite output 'result1' (nan)" for i in nan)
    store, ins, outs = stored("captures/f.h5")
    assert len(store) == 64 - len(raising | nan) == res.rows
    assert np.isfinite(outs["result1"]).all()
    # Resuming does not call the original on failed rows again; retry_failed does (and they fail again).
    again = sample(st.flaky, {"x": (0.0, 1.0), "y": (0.0, 1.0)}, 64, client=dask_client, store="captures/f.h5",
                   progress=False)
    assert (again.new_rows, set(again.failed), again.pending) == (0, set(res.failed), 0)
    retried = sample(st.flaky, {"x": (0.0, 1.0), "y": (0.0, 1.0)}, 64, workers=0, store="captures/f.h5",
                     progress=False, retry_failed=True)
    assert set(retried.failed) == set(res.failed) and len(CaptureStore("captures/f.h5")) == res.rows


def test_a_killed_worker_loses_nothing_committed_and_duplicates_nothing(dask_client):
    pids = dask_client.run(os.getpid)
    holder = {}
    t = threading.Thread(target=lambda: holder.update(res=sample(
        st.sleepy, SPACE, 120, client=dask_client, store="captures/k.h5", progress=False, flush_seconds=0.1,
        batch_rows=10)))
    t.start()
    deadline = time.monotonic() + 60
    while len(read_progress("captures/k.h5").done) < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)  # mid-batch: some rows of its batch committed, some not
    t.join(120)
    assert not t.is_alive()
    res = holder["res"]
    assert (res.rows, res.failed, res.pending, res.duplicates) == (120, {}, 0, 0)
    store, ins, outs = stored("captures/k.h5")
    assert len(store) == 120
    assert sorted(design_index("captures/k.h5").tolist()) == list(range(120))
    np.testing.assert_array_equal(outs["result"], ins["x"] ** 2 + ins["y"])
    assert victim not in dask_client.run(os.getpid).values()  # the nanny started a new worker


def test_surrogate_with_fixed_values_then_train():
    st.wrapped.close()
    res = sample(st.wrapped, {"T": (1000, 1500), "P": (1, 40, "log"), "phi": 0.5}, 64, workers=0, progress=False,
                 method="lhs")
    assert res.rows == 64 and str(res.store).endswith("captures/wrapped.h5")
    store, ins, outs = stored("captures/wrapped.h5")
    assert [v.name for v in store.spec.inputs] == ["T", "P", "phi"] and (ins["phi"] == 0.5).all()
    np.testing.assert_allclose(outs["result"], ins["T"] * 1e-3 + np.log(ins["P"]) * 0.5)
    result = st.wrapped.train(backend="ridge", degree=2)
    assert result.n_train > 40
    st.wrapped.mode = "model"
    assert st.wrapped(1200.0, 10.0, 0.5) == pytest.approx(1.2 + math.log(10) * 0.5, rel=0.05)
    st.wrapped.mode = None


def test_batched_function_runs_one_call_per_chunk_and_grid():
    res = sample(st.vectorised, {"x": (0.0, 3.0), "y": (-1.0, 1.0)}, 50, method="grid", workers=0, progress=False)
    assert res.rows == 49  # the largest full grid within 50: 7 x 7
    store, ins, outs = stored("captures/vec.h5")
    np.testing.assert_allclose(outs["result"], np.sin(ins["x"]) * ins["y"])
    assert sorted(set(np.round(ins["x"], 9).tolist())) == pytest.approx(np.linspace(0, 3, 7).tolist())


def test_array_outputs_and_random_method():
    res = sample(st.field, {"a": (1.0, 2.0), "n": 5}, 10, method="random", store="captures/a.h5", workers=0,
                 progress=False)
    assert res.rows == 10
    store, ins, outs = stored("captures/a.h5")
    assert outs["result"].shape == (10, 5)
    np.testing.assert_allclose(outs["result"], ins["a"][:, None] * np.arange(5))


@pytest.mark.parametrize("space, kwargs, error, message", [
    ({"x": (0.0, 1.0), "z": (0.0, 1.0)}, {}, SampleError, "space variable 'z' is not an argument; the arguments are ['x', 'y']"),
    ({"x": (0.0, 1.0)}, {}, SampleError, "argument 'y' has no default; give it a range or a fixed value"),
    (SPACE, {"method": "halton"}, SampleError, "method must be one of"),
    (SPACE, {"store": None}, SampleError, "no store to write; pass store="),
])
def test_bad_arguments_are_one_line_errors(space, kwargs, error, message):
    args = {"store": "captures/e.h5", "workers": 0, "progress": False, **kwargs}
    with pytest.raises(error) as info:
        sample(st.quick, space, 8, **args)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_resume_refuses_another_design_and_lhs_extension():
    sample(st.quick, SPACE, 8, store="captures/r.h5", method="lhs", workers=0, progress=False)
    with pytest.raises(SampleError, match="method 'sobol' differs from the run recorded in"):
        sample(st.quick, SPACE, 8, store="captures/r.h5", workers=0, progress=False)
    with pytest.raises(SampleError, match="only .*'sobol', 'random'.* designs extend"):
        sample(st.quick, SPACE, 16, store="captures/r.h5", method="lhs", workers=0, progress=False)
    with pytest.raises(SampleError, match="space .* differs"):
        sample(st.quick, {"x": (0.0, 2.0), "y": (1.0, 100.0, "log")}, 8, store="captures/r.h5", method="lhs",
               workers=0, progress=False)


def test_a_store_of_another_function_is_refused():
    sample(st.quick, SPACE, 4, store="captures/o.h5", workers=0, progress=False)
    with pytest.raises((SpecError, SampleError)):
        sample(st.field, {"a": (1.0, 2.0)}, 4, store="captures/o.h5", workers=0, progress=False)


def test_sample_is_exported_lazily_from_phasm():
    assert phasm.sample is sample
    assert "sample" in dir(phasm)


def test_code_not_written_for_it_positional_only_varargs_huge_ranges():
    res = sample(st.positional_only, {"y": (-1.0, 1.0), "x": (0.5, 1.0)}, 8, store="captures/p.h5", workers=0,
                 progress=False)
    ins, outs = stored("captures/p.h5")[1:]
    assert res.rows == 8 and np.allclose(outs["result"], np.arctan2(ins["y"], ins["x"]))
    res = sample(st.with_kwargs, {"x": (0.0, 1.0)}, 8, store="captures/v.h5", workers=0, progress=False)
    store, ins, outs = stored("captures/v.h5")
    assert res.rows == 8 and [v.name for v in store.spec.inputs] == ["x"] and np.allclose(outs["result"], ins["x"])
    res = sample(st.quick, {"x": (-1e150, 1e150), "y": (1e-300, 1e300, "log")}, 16, store="captures/h.h5",
                 workers=0, progress=False)
    store, ins, outs = stored("captures/h.h5")
    assert res.rows == 16 and np.isfinite(ins["x"]).all() and ins["x"].min() < -1e148 and ins["x"].max() > 1e148
    assert (ins["y"] >= 1e-300).all() and np.ptp(np.log10(ins["y"])) > 300  # spread over 600 decades
    res = sample(st.quick, {"x": (-1e308, 1e308), "y": 1.0}, 16, store="captures/o.h5", workers=0, progress=False)
    assert res.rows + len(res.failed) == 16 and res.failed  # x**2 overflows: recorded, not stored
    assert all(e == "non-finite output 'result' (inf)" for e in res.failed.values())


def test_a_function_that_always_fails_stops_after_ten_calls():
    with pytest.raises(SampleError, match=r"the first 10 calls all failed, the first with: RuntimeError: license server"):
        sample(st.always_fails, {"x": (0.0, 1.0)}, 1000, store="captures/af.h5", workers=0, progress=False)
    assert len(read_progress("captures/af.h5").failed) == 10


def test_a_numpy_ufunc_is_refused_with_advice():
    with pytest.raises(SampleError, match="is a numpy ufunc, whose arguments have no names"):
        sample(np.hypot, {"x1": (0.0, 1.0), "x2": (0.0, 1.0)}, 8, store="captures/u.h5", workers=0, progress=False)


def test_a_scheduler_address_is_enough(dask_client):
    res = sample(st.quick, SPACE, 12, scheduler=dask_client.scheduler.address, store="captures/addr.h5", progress=False)
    assert (res.rows, res.workers) == (12, 2)


def test_slurm_cluster_options_make_the_job_script():
    from phasm.sampling.cluster import jobqueue_cluster

    cluster = jobqueue_cluster("slurm", {"cores": 8, "memory": "16GB", "queue": "regular", "walltime": "02:00:00",
                                         "account": "m1234"})
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p regular", "#SBATCH -A m1234", "#SBATCH -t 02:00:00", "--nthreads 1", "--nworkers 8"):
        assert line in script, script
    with pytest.raises(SampleError, match="cluster options for slurm: .*memroy"):
        jobqueue_cluster("slurm", {"cores": 8, "memroy": "1GB"})
    with pytest.raises(SampleError, match=r"cluster: expected one of \['htcondor', 'lsf'"):
        jobqueue_cluster("torque", {})


def test_rows_that_kill_their_worker_are_not_retried_forever(dask_client):
    def set_allowed_failures(n, dask_scheduler=None):
        dask_scheduler.allowed_failures = n

    dask_client.run_on_scheduler(set_allowed_failures, 0)  # Dask gives up on a batch after its first death
    try:
        res = sample(st.crash_above, {"x": (0.0, 1.0), "y": (0.0, 1.0)}, 16, client=dask_client,
                     store="captures/crash.h5", progress=False, batch_rows=8, flush_seconds=0.0)
    finally:
        dask_client.run_on_scheduler(set_allowed_failures, 3)
    x = SampleRun.load("captures/crash.h5").points[:, 0]
    deadly = set(np.flatnonzero(x > 0.8).tolist())
    assert deadly and deadly <= set(res.failed)
    assert all(res.failed[i].startswith("KilledWorker: the worker running this row died") for i in deadly)
    store, ins, outs = stored("captures/crash.h5")
    assert (ins["x"] <= 0.8).all() and res.rows == len(store) == 16 - len(res.failed) and res.duplicates == 0
    assert res.pending == 0
