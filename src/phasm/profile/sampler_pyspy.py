"""py-spy sampler: profile a program from outside, without touching it.

py-spy's folded output carries no per-sample idle mark, so one run is
watched by two py-spy recorders attached to the same process: one with
``--idle`` (every thread, every tick: the wall-time view) and one without
(only threads py-spy sees running: the on-CPU view). Off-CPU time per stack
is the difference, clipped at zero. The wall view is exact to sampling
error; the on/off split inherits py-spy's idle heuristic.

Example
-------
>>> from phasm.profile.sampler_pyspy import pyspy_available
>>> isinstance(pyspy_available(), bool)
True
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from phasm.profile.session import Frame, Session, is_library_file, module_for_file
from phasm.profile.target import python_target

_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>.*):(?P<line>\d+)\)$")
_THREAD = re.compile(r"^thread \((?P<tid>[0-9a-fx]+)\)(?::\s*(?P<name>.*))?$")


# Run as `python -c _HOLD GOFILE script.py ARGS` (or `-m mod ARGS`): waits for GOFILE, then runs the target.
_HOLD = """
import os, runpy, sys, time
go = sys.argv[1]
t_end = time.monotonic() + 30
while not os.path.exists(go) and time.monotonic() < t_end:
    time.sleep(0.001)
target = sys.argv[2:]
if target[0] == "-m":
    sys.argv = [target[1], *target[2:]]
    sys.path.insert(0, os.getcwd())
    runpy.run_module(target[1], run_name="__main__", alter_sys=True)
else:
    sys.argv = target
    sys.path[0] = os.path.dirname(os.path.abspath(target[0]))
    runpy.run_path(target[0], run_name="__main__")
"""


def _wait_sampling(recorder: subprocess.Popen, timeout: float) -> None:
    """Block until a py-spy recorder reports that it samples (or exits, or ``timeout`` passes)."""
    import threading

    started = threading.Event()

    def read() -> None:
        assert recorder.stdout is not None
        for line in recorder.stdout:  # py-spy reports on stdout
            if "Sampling process" in line:
                started.set()
        started.set()  # stdout closed: the recorder ended

    threading.Thread(target=read, daemon=True).start()
    started.wait(timeout)


def _strip_launcher(stack: list[str]) -> list[str]:
    """Drop the hold/runpy frames below the script's ``<module>`` frame."""
    for k, part in enumerate(stack):
        if part.startswith("<module> (<string>") or "runpy" in part:
            continue
        return stack[k:]
    return stack


def pyspy_executable() -> str | None:
    """Path of the ``py-spy`` executable (next to this Python first), or None."""
    cand = Path(sys.executable).with_name("py-spy")
    if cand.exists():
        return str(cand)
    return shutil.which("py-spy")


@functools.lru_cache(maxsize=1)
def pyspy_available() -> bool:
    """True when py-spy is installed and can read another process here (ptrace allowed); cached."""
    exe = pyspy_executable()
    if exe is None:
        return False
    try:
        proc = subprocess.Popen([sys.executable, "-c", "import sys, time; print('ready', flush=True); time.sleep(20)"],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            proc.stdout.readline()  # the interpreter is up
            r = subprocess.run([exe, "dump", "--pid", str(proc.pid)], capture_output=True, timeout=20)
        finally:
            proc.kill()
            proc.wait()
        return r.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def parse_raw(text: str, session: Session, view: str, rate_hz: float, search: Sequence[str]) -> dict:
    """Parse py-spy ``--format raw --threads`` output into ``{(thread, stack): seconds}``."""
    out: dict[tuple[str, tuple[int, ...]], float] = {}
    cache: dict[str, int] = {}
    # py-spy names a thread on some samples and not on others: name every sample by its thread id.
    names: dict[str, str] = {}
    for line in text.splitlines():
        m = _THREAD.match(line.split(";", 1)[0])
        if m and m.group("name"):
            names.setdefault(m.group("tid"), m.group("name").strip())
    for line in text.splitlines():
        line = line.rstrip()
        if not line:
            continue
        stack_text, _, count = line.rpartition(" ")
        try:
            n = int(count)
        except ValueError:
            continue
        parts = stack_text.split(";")
        thread = "MainThread"
        m = _THREAD.match(parts[0]) if parts else None
        if m:
            thread = names.get(m.group("tid"), f"thread-{m.group('tid')}")
            parts = parts[1:]
        stack = []
        for p in _strip_launcher(parts):
            i = cache.get(p)
            if i is None:
                fm = _FRAME.match(p)
                if fm is None:
                    name, file, lineno = p, "<unknown>", 0
                else:
                    name, file, lineno = fm.group("name"), fm.group("file"), int(fm.group("line"))
                i = cache[p] = session.frame_id(Frame(module_for_file(file, search), name, file, lineno,
                                                      is_library_file(file)))
            stack.append(i)
        key = (thread, tuple(stack))
        out[key] = out.get(key, 0.0) + n / rate_hz
    return out


def record_pyspy(command: Sequence[str], rate_hz: float = 100.0, *, cwd: str | None = None,
                 env: dict | None = None, timeout: float | None = None) -> Session:
    """Run ``command`` and sample it with py-spy; returns on-CPU and off-CPU time per stack."""
    exe = pyspy_executable()
    if exe is None:
        raise RuntimeError("py-spy is not installed: pip install 'phasm[profile]'")
    if not 1 <= float(rate_hz) <= 10000:
        raise ValueError(f"rate_hz must be within 1..10000 samples per second, got {rate_hz}")

    session = Session(sampler="py-spy", rate_hz=float(rate_hz), command=list(command))
    target = python_target(command)
    with tempfile.TemporaryDirectory(prefix="phasm-pyspy-") as tmp:
        go = os.path.join(tmp, "go")
        argv = list(command)
        if target is not None:
            # Hold a Python program at the start until both recorders sample, so none of it is missed.
            argv = [target[0], "-c", _HOLD, go, *target[1]]
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env)
        recorders = []
        for name, extra in (("wall", ["--idle"]), ("on", [])):
            recorders.append((name, subprocess.Popen(
                [exe, "record", "--pid", str(proc.pid), "--rate", str(int(rate_hz)), "--format", "raw",
                 "--threads", "--function", "--full-filenames", "--output", os.path.join(tmp, name + ".txt"), *extra],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)))
        for _, r in recorders:
            _wait_sampling(r, 20.0)
        Path(go).touch()
        try:
            status = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            status = proc.wait()
        session.duration_s = time.perf_counter() - t0
        for _, r in recorders:
            try:
                r.wait(timeout=30)
            except subprocess.TimeoutExpired:
                r.kill()
        search = [os.path.dirname(os.path.abspath(a)) for a in command[1:2] if a.endswith(".py")] + [cwd or os.getcwd()]
        views = {}
        for name, _ in recorders:
            path = os.path.join(tmp, name + ".txt")
            text = Path(path).read_text() if os.path.exists(path) else ""
            views[name] = parse_raw(text, session, name, rate_hz, search)
    wall, on = views["wall"], views["on"]
    for key in set(wall) | set(on):
        w, o = wall.get(key, 0.0), on.get(key, 0.0)
        session.add(key[0], key[1], o, max(w - o, 0.0))
    session.n_samples = int(round(session.duration_s * rate_hz))
    session.meta["exit_status"] = status
    threads = {k[0] for k in session.stacks}
    if "MainThread" not in threads and threads:
        session.main_thread = max(threads, key=lambda t: session.total("wall", thread=t))
    covered = session.total("wall", thread=session.main_thread) / session.duration_s if session.duration_s else 0.0
    if covered < 0.5:
        # py-spy's --idle recorder sometimes loses most ticks on an overloaded machine.
        session.meta["warning"] = (f"py-spy's wall-time recorder covered only {covered:.0%} of the run; the off-CPU "
                                   "view is incomplete (overloaded machine?): rerun, or use --sampler inprocess")
    return session
