"""Batching: per-call sites batched transparently, and batched calls against the raw torch module.

    python benchmarks/batching.py [--calls 100000] [--quick]

One network throughout: 5 scalars -> MLP (64, 64), silu -> 1 scalar, trained by phasm (torch
backend) on 4096 captured rows; every figure below is measured in the same run, with the same torch
thread count for every variant (``--threads``, default 1).

Table 1, a per-call site: a Python loop of ``--calls`` calls ``price(S, K, r, v, T)`` whose results
are kept in a list and summed after the loop, in ``model`` and ``auto`` mode: unbatched, inside
``with phasm.batching():`` (deferred values, computed 4096 at a time), and ``price.map(...)`` on the
same rows.  Times are per call, best of 3 rounds, wall clock and CPU time of this process (the CPU
time is less disturbed by other jobs on a shared machine); ratio = unbatched / batched.  Then how
the batched answers compare with the unbatched ones (the network's float32 arithmetic at batch 1
and at batch 4096 may round differently: see docs/batching.md).

Table 2, a batched function (``batched=True``: arrays of ``n`` rows in and out) at batch sizes from
1024 to 65536, per row: the torch module called by hand (``module(x)`` under ``inference_mode`` on
a prepared standardised float32 tensor: the floor for any wrapper), and a call of the surrogate in
``model`` and ``auto`` mode (reading five float64 columns, packing, the model, the answers back as
a float64 array).  Medians of interleaved repetitions, best of 3 rounds; ratio = phasm / module(x).

Run on the main branch (without ``phasm.batching``) it prints Table 2 only: the "before" figures.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import tempfile
import time

import numpy as np


def build(tmp: str, batched: bool):
    import phasm

    @phasm.surrogate(inputs={k: phasm.Scalar() for k in "SKrvT"}, outputs={"price": phasm.Scalar()},
                     store=os.path.join(tmp, f"price{int(batched)}.h5"), batched=batched,
                     name=f"bench.price{int(batched)}")
    def price(S, K, r, v, T):
        return S - K * np.exp(-r * T) + v * np.sqrt(T)

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


def clocked(fn, rounds: int = 3) -> tuple[float, float, object]:
    """Best wall and CPU seconds of ``rounds`` runs of ``fn`` (its last result kept)."""
    wall, cpu, out = [], [], None
    for _ in range(rounds):
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return min(wall), min(cpu), out


def per_call_table(tmp: str, n_calls: int) -> None:
    import phasm

    price = build(tmp, batched=False)
    rng = np.random.default_rng(1)
    rows = rng.uniform(0.6, 1.4, (n_calls, 5)).tolist()
    rows = [tuple(r) for r in rows]
    cols = [np.array(c) for c in zip(*rows)]

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
    head = f"{'mode':<6} {'how':<34} {'wall us/call':>13} {'CPU us/call':>12} {'ratio (wall, CPU)':>18}"
    print(head)
    print("-" * len(head))
    for mode in ("model", "auto"):
        price.mode = mode
        price.reset_stats()
        w0, c0, (plain, _) = clocked(unbatched)
        w1, c1, (lazy, _) = clocked(deferred)
        w2, c2, (mapped_out, _) = clocked(mapped)
        for how, w, c in (("unbatched", w0, c0), ("inside phasm.batching()", w1, c1), ("price.map(S, K, r, v, T)", w2, c2)):
            ratio = "" if how == "unbatched" else f"{w0 / w:>8.1f}x {c0 / c:>7.1f}x"
            print(f"{mode:<6} {how:<34} {w / n_calls * 1e6:>13.2f} {c / n_calls * 1e6:>12.2f} {ratio:>18}")
        a = np.array(plain, np.float64)
        b = np.array([d.result() for d in lazy], np.float64)
        same = float(np.mean(a == b))
        rel = float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-30)))
        print(f"{'':<6} batched vs unbatched answers: {same:.1%} bitwise equal, largest relative difference {rel:.1e}; "
              f"map vs batching(): {'bitwise equal' if np.array_equal(np.array(mapped_out), b) else 'DIFFERENT'}")
        st = price.stats
        print(f"{'':<6} stats after the rounds: {st.calls} calls, {st.model_calls} answered by the model, "
              f"{st.fallbacks} fallbacks")
    price.close()


def batch_table(tmp: str, sizes: list[int], repeat: int) -> None:
    import torch

    import phasm

    price = build(tmp, batched=True)
    art = price.model
    module = art.backend.module_
    rng = np.random.default_rng(2)
    print("\nTable 2: batched calls, per row (medians of interleaved repetitions, best of 3 rounds)\n")
    head = (f"{'batch':>7} {'module(x) by hand':>18} {'phasm model':>12} {'phasm auto':>11} "
            f"{'model / module':>15} {'auto / module':>14}")
    print(head)
    print("-" * len(head))
    for n in sizes:
        cols = tuple(rng.uniform(0.6, 1.4, n) for _ in range(5))
        X = np.stack(cols, 1).astype(np.float32)
        xt = torch.from_numpy(((X - art.x_norm.mean) / art.x_norm.scale).astype(np.float32))

        def raw():
            with torch.inference_mode():
                module(xt)

        def call():
            price(*cols)

        reps = max(5, repeat * 1024 // n)
        best: dict[str, float] = {}
        for _ in range(3):
            times: dict[str, list[float]] = {"raw": [], "model": [], "auto": []}
            for _ in range(reps):  # interleaved: background load falls on every variant alike
                for key in times:
                    if key == "raw":
                        fn = raw
                    else:
                        price.mode = key
                        fn = call
                    t0 = time.perf_counter()
                    fn()
                    times[key].append(time.perf_counter() - t0)
            for key, ts in times.items():
                best[key] = min(best.get(key, np.inf), float(np.median(ts)))
        us = {k: v / n * 1e6 for k, v in best.items()}
        print(f"{n:>7} {us['raw']:>16.3f}us {us['model']:>10.3f}us {us['auto']:>9.3f}us "
              f"{best['model'] / best['raw']:>14.2f}x {best['auto'] / best['raw']:>13.2f}x")
    price.close()


def main() -> None:
    import torch

    import phasm

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=60, help="repetitions at batch 1024 (fewer for larger batches)")
    ap.add_argument("--quick", action="store_true", help="10^4 calls, batches 1024 and 4096 (a smoke run)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads for every variant (default 1: on a shared machine a second thread that "
                         "must be woken for each batch can wait milliseconds for a core)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [1024, 4096] if args.quick else [1024, 4096, 16384, 65536]
    n_calls = 10_000 if args.quick else args.calls
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}; "
          f"{'CUDA GPU present (runs used the CPU)' if torch.cuda.is_available() else 'no GPU'}; "
          f"python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    with tempfile.TemporaryDirectory() as tmp:
        if hasattr(phasm, "batching"):
            per_call_table(tmp, n_calls)
        else:
            print("\n(this phasm has no phasm.batching: Table 1 skipped)")
        batch_table(tmp, sizes, args.repeat)


if __name__ == "__main__":
    main()
