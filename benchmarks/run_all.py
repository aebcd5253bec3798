"""Run the benchmarks one after another, each printing its own table (`make bench`, ~3-4 min on 2 cores).

    python benchmarks/run_all.py [--all]

``--all`` adds the slow ones: the profiler's prediction-vs-reality run and its overhead measurement,
throughput at batch 1..65536 per inference engine (`throughput.py`), and
adaptive vs one-shot sampling (~5 min).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
QUICK = ["overhead.py", "model_latency.py", "bindings.py", "gate.py", "discover.py", "sampling.py"]
SLOW = ["prediction.py", "profiler_overhead.py", "adaptive.py", "native.py", "throughput.py"]


def main() -> int:
    names = QUICK + (SLOW if "--all" in sys.argv[1:] else [])
    failed = []
    for name in names:
        print(f"\n=== benchmarks/{name} ===", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(HERE / name)])
        print(f"(benchmarks/{name}: {time.perf_counter() - t0:.0f} s, exit {rc})", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
