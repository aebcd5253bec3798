"""Prediction vs reality: does the profiler + cost model predict the speedup a surrogate delivers?

    .venv/bin/python benchmarks/prediction.py [--steps 600] [--repeats 5] [--sampler inprocess]

1. profile ``examples/profile_driver/driver.py`` (original mode) -> share p of ``kernels:heat_midpoint``
   within ``driver:run``;
2. capture its calls, train a surrogate (``--backend ridge`` or ``torch``), measure the cost model -> s_eff;
3. predicted end-to-end speedup 1 / ((1 - p) + p / s_eff);
4. run the driver in ``original`` and ``auto`` modes (alternately, best of ``repeats``) -> measured speedup.

Prints a table; acceptance: |predicted / measured - 1| <= 15 %. About 40 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "examples" / "profile_driver"
FUNCTION = "kernels:heat_midpoint"


def _env(work: Path, mode: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PROFILE_DRIVER_WORK"] = str(work)
    env["PHASM_CALL_MODE"] = mode
    env["PYTHONPATH"] = str(DRIVER) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _elapsed(work: Path, mode: str, steps: int, model: Path | None = None) -> float:
    cmd = [sys.executable, str(DRIVER / "driver.py"), "--steps", str(steps)]
    if model is not None:
        cmd += ["--model", str(model)]
    out = subprocess.run(cmd, env=_env(work, mode), cwd=DRIVER, capture_output=True, text=True, check=True).stdout
    m = re.search(r"elapsed_s=([0-9.]+)", out)
    if m is None:
        raise RuntimeError(f"driver printed no elapsed time: {out!r}")
    return float(m.group(1))


def run(work: Path, steps: int = 600, repeats: int = 5, rate_hz: float = 500.0, sampler: str = "inprocess",
        capture_steps: int | None = None, backend: str = "ridge", **backend_params: Any) -> dict[str, Any]:
    """The whole experiment in folder ``work``; returns the figures."""
    from phasm.profile.costmodel import measure_cost
    from phasm.profile.ranking import rank
    from phasm.profile.record import record

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    # 1. profile the original program
    session = record([sys.executable, str(DRIVER / "driver.py"), "--steps", str(steps)], rate_hz, sampler=sampler,
                     cwd=str(DRIVER), env=_env(work, "original"))
    ranking = rank(session, root="driver:run")
    cand = {c.name: c for c in ranking.candidates}
    if FUNCTION not in cand:
        raise RuntimeError(f"{FUNCTION} not among the candidates: {list(cand)}")
    p = cand[FUNCTION].p
    # 2. capture, train, cost model
    _elapsed(work, "capture", capture_steps or steps)
    old_work = os.environ.get("PROFILE_DRIVER_WORK")
    os.environ["PROFILE_DRIVER_WORK"] = str(work)
    sys.path.insert(0, str(DRIVER))
    try:
        import importlib

        import kernels  # type: ignore[import-not-found]

        kernels = importlib.reload(kernels)  # pick up PROFILE_DRIVER_WORK
        fn = kernels.heat_midpoint
        params = backend_params or ({"degree": 3} if backend == "ridge" else {"epochs": 60})
        fn.train(backend=backend, **params)
        model_dir = work / "model"
        fn.save(model_dir)
        cost = measure_cost(fn, widths=None, budget_s=0.5)
        fn.close()
    finally:
        sys.path.remove(str(DRIVER))
        if old_work is None:
            os.environ.pop("PROFILE_DRIVER_WORK", None)
        else:
            os.environ["PROFILE_DRIVER_WORK"] = old_work
    cost.save(work / "cost.json")
    predicted = cost.speedup(p)
    # 3. reality: alternate original and auto runs, best of `repeats` each
    t_orig, t_auto = [], []
    for _ in range(repeats):
        t_orig.append(_elapsed(work, "original", steps))
        t_auto.append(_elapsed(work, "auto", steps, model_dir))
    measured = min(t_orig) / min(t_auto)
    return {"p": p, "p_on": cand[FUNCTION].p_on, "t_orig_call_s": cost.t_orig_s, "t_model_call_s": cost.t_model_s,
            "t_gate_call_s": cost.t_gate_s, "fallback_rate": cost.fallback_rate, "s_eff": cost.s_eff,
            "predicted": predicted, "measured": measured, "error": predicted / measured - 1,
            "t_original_s": min(t_orig), "t_auto_s": min(t_auto), "machine": cost.machine,
            "sampler": session.sampler, "samples": session.n_samples, "backend": backend}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--sampler", default="inprocess", choices=["auto", "py-spy", "inprocess"])
    ap.add_argument("--backend", default="ridge", help="surrogate backend: ridge (numpy) or torch")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="phasm-prediction-") as tmp:
        r = run(Path(tmp), args.steps, args.repeats, args.rate, args.sampler, backend=args.backend)
    print(f"prediction vs reality on {r['machine']} (sampler {r['sampler']}, {r['samples']} samples, "
          f"{r['backend']} surrogate)")
    rows = [
        ("share p of heat_midpoint in driver:run (wall)", f"{r['p']:.3f}"),
        ("share on-CPU", f"{r['p_on']:.3f}"),
        ("original per call", f"{r['t_orig_call_s'] * 1e6:.1f} us"),
        ("surrogate call (model mode) per call", f"{r['t_model_call_s'] * 1e6:.1f} us"),
        ("gate per call", f"{r['t_gate_call_s'] * 1e6:.1f} us"),
        ("fallback rate f", f"{r['fallback_rate']:.3f}"),
        ("s_eff", f"{r['s_eff']:.1f}"),
        ("run time original / auto (best of repeats)", f"{r['t_original_s']:.3f} s / {r['t_auto_s']:.3f} s"),
        ("predicted end-to-end speedup", f"{r['predicted']:.3f}"),
        ("measured end-to-end speedup", f"{r['measured']:.3f}"),
        ("predicted / measured - 1", f"{r['error']:+.1%}  ({'within' if abs(r['error']) <= 0.15 else 'OUTSIDE'} 15 %)"),
    ]
    w = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"  {a:<{w}}  {b}")


if __name__ == "__main__":
    main()
