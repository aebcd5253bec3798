"""Model-mode call latency at batch 1: phasm's share of the time vs the raw torch forward.

    python benchmarks/model_latency.py [--repeat 3000]

For each model it measures, on the same input row (medians of interleaved runs):

* raw: ``module(x)`` under ``torch.inference_mode()`` on a prepared float32 tensor
  (what you would write by hand, and the floor for any wrapper);
* predict: ``ModelArtefact.predict(X)`` (standardise -> backend -> unstandardise, numpy in/out);
* model / auto: a call of the ``@phasm.surrogate`` function in mode ``model`` / ``auto``
  (argument binding, packing, the trust gate in auto, writing outputs back).  The models are
  trained without a tolerance, so auto mode's gate is the captured-range check; the calls lie
  inside the captured range (the trusted path: a fallback would time the original function).

phasm's share = (call - backend forward) / call, where the backend forward is the exact
forward phasm runs (functional ops on the module's weights, bitwise-identical to ``module(x)``).  Goal (issue 3): <= 30 % in model mode.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np


def _median_time(fn, repeat: int) -> float:
    for _ in range(min(200, repeat)):
        fn()
    times = np.empty(repeat)
    for i in range(repeat):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return float(np.median(times))


def _case_scalar(tmp: str):
    import phasm

    @phasm.surrogate(inputs={k: phasm.Scalar() for k in "SKrvT"}, outputs={"price": phasm.Scalar()},
                     store=os.path.join(tmp, "s.h5"))
    def price(S, K, r, v, T):
        return S - K * np.exp(-r * T) + v

    rng = np.random.default_rng(0)
    price.mode = "capture"
    rows = rng.uniform(0.5, 1.5, (256, 5))
    for row in rows:
        price(*map(float, row))
    price.train("torch", hidden=(64, 64), epochs=2)
    args = (1.0, 0.9, 1.05, 1.2, 1.0)  # inside the captured range: auto mode's gate trusts it
    return "5 scalars -> 1, MLP (64, 64)", price, args


def _case_heat(tmp: str, n: int):
    import phasm

    @phasm.surrogate(inputs={"f": phasm.Array((n, n))}, outputs={"u": phasm.Array((n, n), direction="inout")},
                     store=os.path.join(tmp, "h.h5"))
    def heat(f, u):
        u[1:-1, 1:-1] = f[1:-1, 1:-1] * 0.01

    rng = np.random.default_rng(0)
    heat.mode = "capture"
    sources, guesses = rng.normal(size=(128, n, n)), rng.normal(size=(128, n, n))
    for f, u in zip(sources, guesses):
        heat(f, u.copy())
    heat.train("torch", hidden=(128, 128), skip=True, epochs=2)
    # A captured source and initial guess: inside the captured range in all 2048 features, so auto mode's
    # gate trusts it (128 random fields leave a fresh one outside the range in some feature: it would fall
    # back).  The model's answer, written into u, stays inside the range of the captured guesses.
    return f"heat {n}x{n}: f + u (inout) -> u, MLP (128, 128) + skip", heat, (sources[0].copy(), guesses[0].copy())


def main() -> None:
    import torch

    import phasm

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3000)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn, call_args in (_case_scalar(tmp), _case_heat(tmp, 32)):
            art = fn.model
            art.use_engine("torch")  # this table is about the torch forward; benchmarks/throughput.py compares engines
            be = art.backend
            module = be.module_
            spec = fn.spec
            X = np.zeros((1, spec.n_in_features), np.float32)
            xt = torch.from_numpy(art.x_norm.transform(X))

            def raw():
                with torch.inference_mode():
                    module(xt)

            plan = be._plan or module

            def backend_fwd():
                with torch.inference_mode():
                    plan(xt)

            def predict():
                art.predict(X)

            def call():
                fn(*call_args)

            t = {}
            for _ in range(2):  # interleave to spread background load over all variants
                t.setdefault("raw", []).append(_median_time(raw, args.repeat))
                t.setdefault("fwd", []).append(_median_time(backend_fwd, args.repeat))
                t.setdefault("predict", []).append(_median_time(predict, args.repeat))
                fn.mode = "model"
                t.setdefault("model", []).append(_median_time(call, args.repeat))
                fn.mode = "auto"
                t.setdefault("auto", []).append(_median_time(call, args.repeat))
                gate, fn.gate = fn.gate, phasm.FiniteGate()  # the finite checks alone: the gate's own cost apart
                t.setdefault("auto_finite", []).append(_median_time(call, args.repeat))
                fn.gate = gate
            t = {k: min(v) for k, v in t.items()}
            rows.append((name, t))
            fn.close()
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, " + (
        "CUDA GPU present (runs used CPU)" if torch.cuda.is_available() else "no GPU")
    print(f"\nbatch-1 latency, median of {args.repeat} calls (best of 2 interleaved rounds); torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; machine: {machine}\n")
    head = (f"{'model':<52} {'module(x)':>10} {'backend':>9} {'predict':>9} {'model':>9} {'auto':>9} "
            f"{'auto, finite':>12} {'share(model)':>13} {'share(auto)':>12}")
    print(head)
    print("-" * len(head))
    for name, t in rows:
        print(f"{name:<52} {t['raw']*1e6:>8.1f}us {t['fwd']*1e6:>7.1f}us {t['predict']*1e6:>7.1f}us {t['model']*1e6:>7.1f}us "
              f"{t['auto']*1e6:>7.1f}us {t['auto_finite']*1e6:>10.1f}us {(t['model']-t['fwd'])/t['model']:>12.0%} "
              f"{(t['auto']-t['fwd'])/t['auto']:>12.0%}")
    print("\nmodule(x): the torch module called by hand; backend: the forward phasm actually runs (functional ops on the")
    print("same weights, bitwise-identical output); auto: behind the default gate (without a tolerance, the captured")
    print("range); auto, finite: behind phasm.FiniteGate (NaN/inf checks only); share = (phasm call - backend forward) /")
    print("phasm call; goal: share(model) <= 30 %")


if __name__ == "__main__":
    main()
