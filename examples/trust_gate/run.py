"""The trust gate end to end: capture, train with a tolerance, auto mode, out-of-domain, drift, retrain.

Run: .venv/bin/python examples/trust_gate/run.py      (a few seconds; writes into a temp folder)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

import phasm


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="phasm-gate-"))

    @phasm.surrogate(store=tmp / "captures.h5", batched=True, backend="ensemble",
                     tolerance=phasm.Tolerance(rel=1e-3, max_miss_rate=0.01),
                     inputs={"a": phasm.Array((), np.float64), "b": phasm.Array((), np.float64)},
                     outputs={"y": phasm.Array((), np.float64)})
    def slow(a, b):
        return np.exp(a) * np.cos(b) + 1.0

    rng = np.random.default_rng(0)
    slow.mode = "capture"
    slow(rng.uniform(0, 1, 6000), rng.uniform(0, 1, 6000))
    slow.train(member="ridge", k=5, member_params={"degree": 6})  # member="torch" for MLPs
    print(slow.calibration)

    slow.mode = "auto"
    for label, a, b in [
        ("in distribution", rng.uniform(0, 1, 20000), rng.uniform(0, 1, 20000)),
        ("a beyond the captured range", rng.uniform(1, 2, 20000), rng.uniform(0, 1, 20000)),
        ("drifted: a in [0.5, 1.5]", rng.uniform(0.5, 1.5, 20000), rng.uniform(0, 1, 20000)),
    ]:
        slow.reset_stats()
        slow(a, b)
        print(f"{label:30s} fallback {slow.stats.fallback_rate:7.2%}")

    slow.retrain().join()  # background thread + atomic hot swap; repeats the last train() settings
    slow.reset_stats()
    slow(rng.uniform(0.5, 1.5, 20000), rng.uniform(0, 1, 20000))
    print(f"{'drifted, after retrain':30s} fallback {slow.stats.fallback_rate:7.2%}")
    print("model and gate saved to", slow.save(tmp / "model"))
    slow.close()


if __name__ == "__main__":
    main()
