"""The examples/profile_driver loop at a small size: a profile, captures, a calibrated ridge model,
shadow-mode captures after training, and a cost model -- every kind of report target."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "examples" / "profile_driver"


def _env(work: Path, mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHASM_")}
    env.update(PROFILE_DRIVER_WORK=str(work), PHASM_CALL_MODE=mode)
    env["PYTHONPATH"] = os.pathsep.join([str(DRIVER)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def run_driver(work: Path, mode: str, steps: int, model: Path | None = None) -> None:
    cmd = [sys.executable, str(DRIVER / "driver.py"), "--steps", str(steps)] + (["--model", str(model)] if model else [])
    subprocess.run(cmd, env=_env(work, mode), cwd=DRIVER, check=True, capture_output=True, text=True)


def build(work: Path, *, steps: int = 120, captures: int = 600, later: int = 200) -> dict[str, Path]:
    """Write ``profile/``, ``captures (heat.h5)``, ``model/`` and ``bench/`` under ``work``; returns their paths."""
    import phasm
    from phasm.profile.costmodel import measure_cost, plot_cost
    from phasm.profile.outputs import write_outputs
    from phasm.profile.ranking import rank
    from phasm.profile.record import record

    work.mkdir(parents=True, exist_ok=True)
    session = record([sys.executable, str(DRIVER / "driver.py"), "--steps", str(steps)], 500, sampler="inprocess",
                     cwd=str(DRIVER), env=_env(work, "original"))
    write_outputs(session, rank(session, root="driver:run"), work / "profile")
    run_driver(work, "capture", captures)
    old = os.environ.get("PROFILE_DRIVER_WORK")
    os.environ["PROFILE_DRIVER_WORK"] = str(work)
    sys.path.insert(0, str(DRIVER))
    try:
        sys.modules.pop("kernels", None)
        kernels = importlib.import_module("kernels")
        fn = kernels.heat_midpoint
        fn.tolerance = phasm.Tolerance(rel=0.01, abs=2e-4, max_miss_rate=0.05)
        fn.train(backend="ridge", degree=3)
        fn.save(work / "model")
        fn.close()
        run_driver(work, "shadow", later, model=work / "model")
        cost = measure_cost(fn, model=work / "model", widths=None, budget_s=0.2, n_calls=300)
        (work / "bench").mkdir(exist_ok=True)
        cost.save(work / "bench" / "cost.json")
        plot_cost(cost, work / "bench" / "cost.png")
        fn.close()
    finally:
        sys.path.remove(str(DRIVER))
        sys.modules.pop("kernels", None)
        if old is None:
            os.environ.pop("PROFILE_DRIVER_WORK", None)
        else:
            os.environ["PROFILE_DRIVER_WORK"] = old
    return {"model": work / "model", "store": work / "heat.h5", "profile": work / "profile", "bench": work / "bench"}
