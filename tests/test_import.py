"""`import phasm` is light: no ML library, no h5py, fast."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys, time
t0 = time.perf_counter()
import phasm
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "loaded": sorted(m for m in ("torch", "h5py", "typer", "sklearn", "onnxruntime", "dask", "rich") if m in sys.modules)}))
"""


def test_import_is_lazy_and_fast():
    runs = [json.loads(subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout)
            for _ in range(3)]
    assert all(r["loaded"] == [] for r in runs), runs
    # ~0.1 s on a quiet machine; the bound leaves room for a loaded CI box and still catches torch (~2 s).
    assert min(r["seconds"] for r in runs) < 1.0, runs
