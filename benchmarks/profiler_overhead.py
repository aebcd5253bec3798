"""Profiler overhead on a CPU-bound script: in-process sampler (signal and thread methods) and py-spy, at 100 Hz.

    .venv/bin/python benchmarks/profiler_overhead.py [--rate 100] [--pairs 7]

The in-process methods run the workload in this process, alternating runs with and without the sampler;
the ratio is the median over pairs of (time with / time without), for wall time and for the process's CPU
time (robust on a shared machine: it counts the sampler's own work). py-spy runs the workload as a
script in a child process, with and without two py-spy recorders attached (wall time only).
Goal (issue 6): in-process overhead <= 5 % at 100 Hz. About 60 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORK = '''
def work(n):
    acc = 0
    for i in range(n):
        acc = (acc * 31 + i) % 1000003
        if i % 7 == 0:
            acc ^= i
    return acc

def main(n=2_000_000):
    return work(n)

if __name__ == "__main__":
    import sys, time
    t0 = time.perf_counter()
    main(int(sys.argv[1]))
    print(time.perf_counter() - t0)
'''


def _workload():
    ns: dict = {}
    exec(compile(WORK, "workload.py", "exec"), ns)
    return ns["work"]


def measure_inprocess(method: str, rate: float, pairs: int, n: int) -> tuple[float, float]:
    from phasm.profile.sampler_inprocess import InProcessSampler

    work = _workload()
    work(n // 10)
    wall, cpu = [], []
    for _ in range(pairs):
        w0, c0 = time.perf_counter(), time.process_time()
        work(n)
        base_w, base_c = time.perf_counter() - w0, time.process_time() - c0
        if method == "none":  # A/A: the noise floor of this machine right now
            w0, c0 = time.perf_counter(), time.process_time()
            work(n)
            prof_w, prof_c = time.perf_counter() - w0, time.process_time() - c0
        else:
            with InProcessSampler(rate_hz=rate, method=method):
                w0, c0 = time.perf_counter(), time.process_time()
                work(n)
                prof_w, prof_c = time.perf_counter() - w0, time.process_time() - c0
        wall.append(prof_w / base_w)
        cpu.append(prof_c / base_c)
    return statistics.median(wall), statistics.median(cpu)


def measure_pyspy(rate: float, pairs: int, n: int) -> float | None:
    from phasm.profile.sampler_pyspy import pyspy_available, pyspy_executable

    if not pyspy_available():
        return None
    exe = pyspy_executable()
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "workload.py"
        script.write_text(WORK)
        for _ in range(pairs):
            base = float(subprocess.run([sys.executable, str(script), str(n)], capture_output=True, text=True).stdout)
            proc = subprocess.Popen([sys.executable, str(script), str(n)], stdout=subprocess.PIPE, text=True)
            spies = [subprocess.Popen([exe, "record", "--pid", str(proc.pid), "--rate", str(int(rate)), "--format", "raw",
                                       "--output", str(Path(tmp) / f"{k}.txt"), *extra],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for k, extra in enumerate((["--idle"], []))]
            out, _ = proc.communicate()
            for s in spies:
                s.wait()
            ratios.append(float(out) / base)
    return statistics.median(ratios)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--pairs", type=int, default=9)
    ap.add_argument("--n", type=int, default=10_000_000, help="workload size (about 0.7 s on the 2-core box)")
    args = ap.parse_args()
    machine = f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), no GPU, Python {platform.python_version()}"
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    print(f"profiler overhead at {args.rate:g} Hz on {machine}; load average {load:.1f}; median of {args.pairs} pairs")
    print(f"{'sampler':<28}{'wall ratio':>12}{'CPU ratio':>12}{'overhead (wall)':>18}")
    for method in ("none", "signal", "thread"):
        w, c = measure_inprocess(method, args.rate, args.pairs, args.n)
        label = "no sampler (A/A noise)" if method == "none" else "in-process " + method
        print(f"{label:<28}{w:>12.3f}{c:>12.3f}{(w - 1):>18.1%}")
    r = measure_pyspy(args.rate, max(3, args.pairs // 2), args.n)
    if r is None:
        print(f"{'py-spy (2 recorders)':<28}{'n/a: py-spy missing or cannot attach':>42}")
    else:
        print(f"{'py-spy (2 recorders)':<28}{r:>12.3f}{'-':>12}{(r - 1):>18.1%}")


if __name__ == "__main__":
    main()
