"""Batching: per-call sites batched transparently, and phasm against the raw backends at batch 1 to 65536.

    python benchmarks/batching.py [--calls 100000] [--quick]

One network throughout: 5 scalars -> MLP (64, 64), silu -> 1 scalar, trained by phasm (torch
backend) on 4096 captured rows, served by the engine phasm chooses at load (printed: onnxruntime
when it is installed and faster here); every figure below is measured in the same run, with the
same torch thread count for every variant (``--threads``, default 1).

Table 1, a per-call site: a Python loop of ``--calls`` calls ``price(S, K, r, v, T)`` whose results
are kept in a list and summed after the loop, in ``model`` and ``auto`` mode: unbatched, inside
``with phasm.batching():`` (deferred values, computed 4096 at a time), and ``price.map(...)`` on the
same rows as five float arrays.  Times are per call, best of 3 rounds, wall clock and CPU time of
this process (the CPU time is less disturbed by other jobs on a shared machine); ratio = unbatched /
batched.  ``gc`` is the CPU time Python's cyclic garbage collector spent during the batched loop
(measured with ``gc.callbacks``): the loop keeps 10^5 new objects (the deferred values) alive, and
each full collection then walks every object of the process (some 3 x 10^5 after importing torch
and onnxruntime).  Then how the batched answers compare with the unbatched ones.

Table 2, phasm against the raw backends on the same network, per call: batch 1 is the per-call
function ``price(S, K, r, v, T)`` with five floats; batch n >= 1024 the same function declared
``batched=True`` called with five float64 arrays of n rows (reading, checking, packing, the model,
the answers back as a float64 array).  The raw backends run on prepared standardised float32 rows:
the torch module (``module(x)`` under ``inference_mode``) and onnxruntime (``session.run`` on the
same network exported to ONNX, a session with 1 thread).  Medians of interleaved blocks, best of 3
rounds; ratio = phasm model mode / the fastest raw backend of the row.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import tempfile
import time

import numpy as np


def _price(S, K, r, v, T):
    return S - K * np.exp(-r * T) + v * np.sqrt(T)


def declarations() -> dict:
    import phasm

    return dict(inputs={k: phasm.Scalar() for k in "SKrvT"}, outputs={"price": phasm.Scalar()})


def build(tmp: str, batched: bool):
    """The surrogate of ``_price`` (a per-call function, or ``batched=True``), trained on 4096 captured rows."""
    import phasm

    name = f"bench.price{int(batched)}"
    price = phasm.surrogate(_price, name=name, store=os.path.join(tmp, f"{name}.h5"), batched=batched,
                            **declarations())
    rng = np.random.default_rng(0)
    cols = [rng.uniform(0.5, 1.5, 4096) for _ in range(5)]
    price.mode = "capture"
    if batched:
        price(*cols)
    else:
        for row in np.stack(cols, 1).tolist():
            price(*row)
    price.train("torch", hidden=(64, 64), epochs=3, seed=0)
    return price


def per_call_table(tmp: str, n_calls: int) -> None:
    import phasm

    price = build(tmp, batched=False)
    print(f"\nengine: {price.model.inference.summary()}")
    rng = np.random.default_rng(1)
    rows = [tuple(r) for r in rng.uniform(0.6, 1.4, (n_calls, 5)).tolist()]
    cols = [np.array(c) for c in zip(*rows)]
    gc_cpu = [0.0, 0.0]  # CPU seconds in collections, start of the current one

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_cpu[1] = time.process_time()
        else:
            gc_cpu[0] += time.process_time() - gc_cpu[1]

    def unbatched():
        out = [price(*r) for r in rows]
        return out, sum(out)

    def deferred():
        with phasm.batching():
            out = [price(*r) for r in rows]
        return out, sum(map(float, out))

    def mapped():
        out = price.map(*cols)
        return out, sum(out)

    print(f"\nTable 1: a loop of {n_calls} calls price(S, K, r, v, T), results kept and summed after the loop; "
          "per call, best of 3\n")
    head = (f"{'mode':<6} {'how':<26} {'wall us/call':>13} {'CPU us/call':>12} {'of it gc':>9} "
            f"{'ratio (wall, CPU)':>18}")
    print(head)
    print("-" * len(head))
    gc.callbacks.append(on_gc)
    try:
        for mode in ("model", "auto"):
            price.mode = mode
            price.reset_stats()
            results, rounds = {}, {}
            for how, fn in (("unbatched", unbatched), ("inside phasm.batching()", deferred),
                            ("price.map(S, K, r, v, T)", mapped)):
                walls, cpus, gcs = [], [], []
                for _ in range(3):
                    gc.collect()
                    gc_cpu[0] = 0.0
                    w0, c0 = time.perf_counter(), time.process_time()
                    out = fn()
                    cpus.append(time.process_time() - c0)
                    walls.append(time.perf_counter() - w0)
                    gcs.append(gc_cpu[0])
                results[how] = (min(walls), min(cpus), gcs[int(np.argmin(cpus))], out[0])
                rounds[how] = (cpus, gcs)
            w0, c0 = results["unbatched"][:2]
            for how, (w, c, g, _) in results.items():
                ratio = "" if how == "unbatched" else f"{w0 / w:>8.1f}x {c0 / c:>7.1f}x"
                print(f"{mode:<6} {how:<26} {w / n_calls * 1e6:>13.2f} {c / n_calls * 1e6:>12.2f} "
                      f"{g / n_calls * 1e6:>9.2f} {ratio:>18}")
            a = np.array(results["unbatched"][3], np.float64)
            b = np.array([d.result() for d in results["inside phasm.batching()"][3]], np.float64)
            same = float(np.mean(a == b))
            rel = float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-30)))
            mapped_same = np.array_equal(np.array(results["price.map(S, K, r, v, T)"][3]), b)
            print(f"{'':<6} batched vs unbatched answers: {same:.1%} bitwise equal, largest relative difference "
                  f"{rel:.1e}; map vs batching(): {'bitwise equal' if mapped_same else 'DIFFERENT'}")
            cpus, gcs = rounds["inside phasm.batching()"]
            print(f"{'':<6} batched loop, each round: CPU " + ", ".join(f"{c / n_calls * 1e6:.2f}" for c in cpus)
                  + " us/call, of it gc " + ", ".join(f"{g / n_calls * 1e6:.2f}" for g in gcs) + " us/call")
            st = price.stats
            print(f"{'':<6} stats after the rounds: {st.calls} calls, {st.model_calls} answered by the model, "
                  f"{st.fallbacks} fallbacks")
    finally:
        gc.callbacks.remove(on_gc)
    price.close()


def batch_table(tmp: str, sizes: list[int], budget: float) -> None:
    import onnxruntime as ort
    import torch

    import phasm
    from phasm.backends.onnx_backend import OnnxBackend

    trained = build(tmp, batched=True)
    path = trained.save(os.path.join(tmp, "model"))
    trained.close()
    # Per mode, the per-call function (batch 1) and the batched one, all on the saved network.
    fns = {(mode, batched): phasm.surrogate(_price, name=f"bench.price_{mode}{int(batched)}", model=path, mode=mode,
                                            batched=batched, **declarations())
           for mode in ("model", "auto") for batched in (False, True)}
    art = fns["model", True].model
    module = art.backend.module_
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    session = ort.InferenceSession(OnnxBackend.from_backend(art.backend).bytes_, so,
                                   providers=["CPUExecutionProvider"])
    print(f"\nTable 2: per call, phasm model and auto mode against the raw backends on the same network "
          f"(engine: {art.inference.engine}); medians of interleaved blocks, best of 3 rounds\n")
    head = (f"{'batch':>6} {'raw torch':>11} {'raw onnxruntime':>16} {'phasm model':>12} {'phasm auto':>11} "
            f"{'model / fastest raw':>20} {'auto / fastest raw':>19}")
    print(head)
    print("-" * len(head))
    rng = np.random.default_rng(2)
    for n in sizes:
        cols = tuple(rng.uniform(0.6, 1.4, n) for _ in range(5))
        X = np.stack(cols, 1).astype(np.float32)
        Z = ((X - art.x_norm.mean) / art.x_norm.scale).astype(np.float32)
        zt = torch.from_numpy(Z.copy())
        args = tuple(float(c[0]) for c in cols) if n == 1 else cols
        model_fn, auto_fn = fns["model", n > 1], fns["auto", n > 1]

        def raw_torch():
            with torch.inference_mode():
                module(zt)

        def raw_ort():
            session.run(None, {"x": Z})

        def model():
            model_fn(*args)

        def auto():
            auto_fn(*args)

        timed = {"raw torch": raw_torch, "raw onnxruntime": raw_ort, "model": model, "auto": auto}
        t0 = time.perf_counter()
        model()
        per_call = max(time.perf_counter() - t0, 1e-6)
        per_block = max(1, int(1e-3 / per_call))
        reps = int(np.clip(budget / (per_call * per_block * len(timed)), 9, 200))
        best: dict[str, float] = {}
        for _ in range(3):
            times: dict[str, list[float]] = {k: [] for k in timed}
            for _ in range(reps):  # interleaved: background load falls on every variant alike
                for key, fn in timed.items():
                    t0 = time.perf_counter()
                    for _ in range(per_block):
                        fn()
                    times[key].append((time.perf_counter() - t0) / per_block)
            for key, ts in times.items():
                best[key] = min(best.get(key, np.inf), float(np.median(ts)))
        raw = min(best["raw torch"], best["raw onnxruntime"])
        print(f"{n:>6} {fmt(best['raw torch']):>11} {fmt(best['raw onnxruntime']):>16} {fmt(best['model']):>12} "
              f"{fmt(best['auto']):>11} {best['model'] / raw:>19.2f}x {best['auto'] / raw:>18.2f}x")
    for f in fns.values():
        f.close()


def fmt(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:.1f} us" if us < 1000 else f"{us / 1000:.2f} ms"


def main() -> None:
    import torch

    import phasm

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--budget", type=float, default=1.0, help="seconds per batch size per round in Table 2")
    ap.add_argument("--quick", action="store_true", help="10^4 calls, batches 1 and 1024 (a smoke run)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads for every variant (default 1: on a shared machine a second thread that "
                         "must be woken for each batch can wait milliseconds for a core)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [1, 1024] if args.quick else [1, 1024, 4096, 16384, 65536]
    n_calls = 10_000 if args.quick else args.calls
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}; "
          f"{'CUDA GPU present (runs used the CPU)' if torch.cuda.is_available() else 'no GPU'}; "
          f"python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    with tempfile.TemporaryDirectory() as tmp:
        if hasattr(phasm, "batching"):
            per_call_table(tmp, n_calls)
        else:
            print("\n(this phasm has no phasm.batching: Table 1 skipped)")
        batch_table(tmp, sizes, args.budget / 4 if args.quick else args.budget)


if __name__ == "__main__":
    main()
