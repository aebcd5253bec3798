"""Capture from several MPI ranks / Slurm array tasks (real processes) into one logical store,
as docs/sampling.md's worked example runs it under srun/mpirun."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from phasm.store import CaptureStore

SIM = textwrap.dedent('''
    import os
    import numpy as np
    import phasm

    @phasm.surrogate(store="captures/price.h5")
    def price(S: float, K: float, v: float) -> float:
        return max(S - K, 0.0) + 0.4 * v * S

    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("SLURM_PROCID", "0")))
    size = int(os.environ.get("OMPI_COMM_WORLD_SIZE", os.environ.get("SLURM_NTASKS", "1")))
    task = int(os.environ.get("SLURM_ARRAY_TASK_ID", "0"))
    rows = np.random.default_rng(task).uniform(0.5, 2.0, (200, 3))
    for S, K, v in rows[rank::size]:  # each rank takes its share of the work
        price(float(S), float(K), float(v))
''')


def run_all(envs):
    env0 = {k: v for k, v in os.environ.items() if not k.startswith(("PHASM_", "OMPI_", "SLURM_", "PMI_"))}
    procs = [subprocess.Popen([sys.executable, "sim.py"], env={**env0, "PHASM_CALL_MODE": "capture", **e},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for e in envs]
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out


def check(store, n_rows, shards):
    cs = CaptureStore(store)
    assert len(cs) == n_rows
    assert sorted(p.name for p in cs.files) == sorted(f"{s}.h5" for s in shards)
    ins, outs = cs.read()
    expect = np.maximum(ins["S"] - ins["K"], 0) + 0.4 * ins["v"] * ins["S"]
    np.testing.assert_allclose(outs["result"], expect)
    return ins


def test_four_mpi_ranks_write_four_shards_of_one_store():
    Path("sim.py").write_text(SIM)
    run_all([{"OMPI_COMM_WORLD_RANK": str(r), "OMPI_COMM_WORLD_SIZE": "4"} for r in range(4)])
    ins = check("captures/price.h5", 200, [f"rank{r}" for r in range(4)])
    expected = np.random.default_rng(0).uniform(0.5, 2.0, (200, 3))  # every row of every rank, none twice
    got = np.stack([ins["S"], ins["K"], ins["v"]], axis=1)
    assert sorted(map(tuple, got.round(12))) == sorted(map(tuple, expected.round(12)))


def test_slurm_array_tasks_and_srun_ranks():
    Path("sim.py").write_text(SIM)
    run_all([{"SLURM_ARRAY_TASK_ID": str(t)} for t in range(3)])  # sbatch --array=0-2, one task each
    check("captures/price.h5", 600, [f"task{t}" for t in range(3)])
    run_all([{"SLURM_PROCID": str(r), "SLURM_NTASKS": "2"} for r in range(2)])  # srun -n 2, same store
    check("captures/price.h5", 800, [*(f"task{t}" for t in range(3)), "rank0", "rank1"])
