"""Run a command under a sampler and return its :class:`~phasm.profile.session.Session`.

``sampler="auto"`` uses py-spy when it is installed and may attach to a
process here, else the in-process sampler (which needs the command to be a
Python script or ``-m module``).

Example
-------
>>> from phasm.profile.record import record            # doctest: +SKIP
>>> session = record(["python", "sim.py", "--steps", "100"], rate_hz=100)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

from phasm.profile.session import Session
from phasm.profile.target import python_target

SAMPLERS = ("auto", "py-spy", "inprocess")


def record_inprocess(command: Sequence[str], rate_hz: float = 100.0, *, cwd: str | None = None,
                     env: dict | None = None, timeout: float | None = None) -> Session:
    """Run a Python ``command`` with the in-process sampler inside it."""
    target = python_target(command)
    if target is None:
        raise ValueError(f"the in-process sampler runs Python scripts ('python script.py ...' or 'python -m mod'); "
                         f"got command {list(command)!r}")
    python, rest = target
    env = dict(os.environ if env is None else env)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with tempfile.TemporaryDirectory(prefix="phasm-profile-") as tmp:
        out = os.path.join(tmp, "session.json")
        proc = subprocess.run([python, "-m", "phasm.profile._child", out, str(float(rate_hz)), "--", *rest],
                              cwd=cwd, env=env, timeout=timeout)
        if not os.path.exists(out):
            raise RuntimeError(f"profiled program wrote no samples (exit status {proc.returncode}): {list(command)!r}")
        session = Session.load(out)
    session.command = list(command)
    return session


def record(command: Sequence[str], rate_hz: float = 100.0, *, sampler: str = "auto", cwd: str | None = None,
           env: dict | None = None, timeout: float | None = None) -> Session:
    """Profile one run of ``command``; returns on-CPU and off-CPU time per stack."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if not command:
        raise ValueError("command is empty: give the program to profile after '--'")
    if sampler == "auto":
        from phasm.profile.sampler_pyspy import pyspy_available

        sampler = "py-spy" if pyspy_available() else "inprocess"
    if sampler == "py-spy":
        from phasm.profile.sampler_pyspy import record_pyspy

        return record_pyspy(command, rate_hz, cwd=cwd, env=env, timeout=timeout)
    return record_inprocess(command, rate_hz, cwd=cwd, env=env, timeout=timeout)
