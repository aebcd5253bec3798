"""Samplers on real programs: known shares (60/30/10) on-CPU, and the off-CPU view of a program that waits."""

from __future__ import annotations

import sys
import time

import pytest
from profile_programs import SHARES, SLEEPS, write

from phasm.profile.ranking import rank
from phasm.profile.record import record
from phasm.profile.target import python_target
from phasm.profile.sampler_inprocess import InProcessSampler
from phasm.profile.sampler_pyspy import pyspy_available

PYSPY = pyspy_available()


def shares(session, root):
    return {c.name.split(":")[1]: c for c in rank(session, root=root, min_share=0.0).candidates}


def test_inprocess_known_shares(tmp_path):
    prog = write(tmp_path, "shares.py", SHARES)
    session = record([sys.executable, str(prog), "120"], rate_hz=1000, sampler="inprocess")
    assert session.sampler == "inprocess-signal"
    assert session.n_samples > 600
    c = shares(session, "step")
    # CPU-time spins: the on-CPU shares are exactly 60/30/10 by construction
    assert c["sixty"].p_on == pytest.approx(0.6, abs=0.05)
    assert c["thirty"].p_on == pytest.approx(0.3, abs=0.05)
    assert c["ten"].p_on == pytest.approx(0.1, abs=0.04)
    assert [n for n in c if n in ("sixty", "thirty", "ten")] == ["sixty", "thirty", "ten"]
    # the launcher frames are cut: the script's <module> is the bottom of every main-thread stack
    assert all(session.frames[st[0]].qualname == "<module>" for (th, st) in session.stacks if th == "MainThread")


def test_inprocess_off_cpu_view(tmp_path):
    prog = write(tmp_path, "sleeps.py", SLEEPS)
    session = record([sys.executable, str(prog)], rate_hz=500, sampler="inprocess")
    c = shares(session, "main")
    total_wall = session.total("wall", thread="MainThread")
    assert total_wall == pytest.approx(session.duration_s, rel=0.25)
    # sleeping and waiting for a lock are off-CPU; computing is on-CPU
    assert c["sleeper"].p_off > 2 * c["sleeper"].p_on
    assert c["wait_for_worker"].p_off > c["wait_for_worker"].p_on
    assert "compute" not in c and c["burn"].p_on > 0.6  # compute: a tower over burn
    burn = {i for i, f in enumerate(session.frames) if f.qualname == "burn"}
    on_burn = sum(w[0] for (th, st), w in session.stacks.items() if burn & set(st) and th == "MainThread")
    assert on_burn == pytest.approx(2 * 0.25, rel=0.25)  # CPU seconds burnt in compute(), on any machine load
    assert c["sleeper"].seconds == pytest.approx(0.7, abs=0.1)  # 2 x 0.35 s asleep, whatever the load
    # the worker thread's burning shows up on-CPU, in its own thread
    assert sum(w[0] for (th, _), w in session.stacks.items() if th == "worker") > 0.03


def test_thread_method_in_this_process():
    def busy():
        end = time.thread_time() + 0.3
        while time.thread_time() < end:
            pass

    with InProcessSampler(rate_hz=200, method="thread") as sampler:
        busy()
        time.sleep(0.2)
    s = sampler.session
    assert s.sampler == "inprocess-thread"
    assert s.total("wall", thread="MainThread") == pytest.approx(s.duration_s, rel=0.2)
    qual = {f.qualname: i for i, f in enumerate(s.frames)}
    on_busy = sum(w[0] for (th, st), w in s.stacks.items() if qual.get("test_thread_method_in_this_process.<locals>.busy") in st)
    assert 0.15 < on_busy < 0.45  # busy() burns 0.3 s of CPU


def test_signal_method_restores_handlers():
    import signal

    before = signal.getsignal(signal.SIGALRM)
    with InProcessSampler(rate_hz=100, method="signal"):
        time.sleep(0.05)
    assert signal.getsignal(signal.SIGALRM) == before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="rate_hz must be within 1..10000"):
        InProcessSampler(rate_hz=0)
    with pytest.raises(ValueError, match="method must be one of"):
        InProcessSampler(method="perf")
    with pytest.raises(ValueError, match="sampler must be one of"):
        record(["python", "x.py"], sampler="gdb")
    with pytest.raises(ValueError, match="runs Python scripts"):
        record(["ls", "-l"], sampler="inprocess")
    assert python_target(["python3", "-u", "app.py", "--n", "3"]) == ("python3", ["app.py", "--n", "3"])
    assert python_target(["python", "-m", "pkg.mod"]) == ("python", ["-m", "pkg.mod"])


@pytest.mark.skipif(not PYSPY, reason="py-spy missing or cannot attach here")
def test_pyspy_shares_and_off_cpu(tmp_path):
    prog = write(tmp_path, "sleeps.py", SLEEPS)
    for _ in range(3):  # py-spy (an external process) now and then loses its idle ticks on a loaded machine
        session = record([sys.executable, str(prog)], rate_hz=200, sampler="py-spy")
        if "warning" not in session.meta:
            break
        assert "covered only" in session.meta["warning"]
    assert session.sampler == "py-spy"
    c = shares(session, "main")
    assert c["sleeper"].seconds == pytest.approx(0.7, abs=0.2)  # py-spy drops ticks on a loaded machine
    assert c["sleeper"].p_off > c["sleeper"].p_on
    assert c["burn"].p_on > c["burn"].p_off


def test_signal_method_warns_when_the_program_takes_sigalrm():
    import signal

    with InProcessSampler(rate_hz=100, method="signal") as sampler:
        time.sleep(0.03)
        signal.signal(signal.SIGALRM, lambda *a: None)
        time.sleep(0.03)
    assert "replaced the SIGALRM handler" in sampler.session.meta["warning"]
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL
