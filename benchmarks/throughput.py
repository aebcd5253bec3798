"""Throughput at batch 1..65536: phasm ``model`` mode on each inference engine against the raw backends.

    python benchmarks/throughput.py [--max-batch 65536] [--budget 0.4] [--torch-threads N] [--profile] [--json out.json]

One network for every row: the MLP 5 -> 64 -> 64 -> 1 (SiLU) of issue 13, trained by phasm on a
5-scalar function.  Per batch size, interleaved in rounds (medians of the per-call times):

* raw torch: the trained ``torch.nn.Module`` called on a prepared float32 tensor under
  ``torch.inference_mode()`` (torch's default threads);
* raw onnxruntime: ``session.run(None, {"x": x})`` on the same network as an ONNX graph, a session
  with 1 intra-op thread and default options, on a prepared float32 array;
* phasm model mode with the engine forced to torch, to onnx, and chosen automatically (``auto``,
  measured at load): batch 1 is the plain per-call function ``f(S, K, r, v, T)``, larger batches
  the same function declared ``batched=True`` and called with 5 arrays of n rows;
* phasm ``auto`` call mode (the model behind its stored gate) with the engine chosen automatically;
* ``ModelArtefact.predict`` on the packed (n, 5) float32 rows (onnx engine): the model without the
  surrogate wrapper.

The raw backends run the network on rows that are already standardised float32 matrices; phasm's
figures include reading the arguments, packing, standardising, writing the answers back.
Targets (issue 13): batch 1, model mode within 1.3x of raw onnxruntime and auto mode within 1.6x;
batch >= 1024, model mode within 1.2x of the fastest raw backend of the row.  ``--profile`` prints
where a model-mode call spends its time (cProfile, batch 1 and 1024).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import tempfile
import time

import numpy as np

BATCHES = (1, 16, 256, 1024, 4096, 16384, 65536)


def _price(S, K, r, v, T):
    return S - K * np.exp(-r * T) + v * np.sqrt(T)


def _build(tmp: str):
    import phasm

    decl = dict(inputs={k: phasm.Scalar() for k in ("S", "K", "r", "v", "T")}, outputs={"price": phasm.Scalar()})
    fn = phasm.surrogate(_price, name="bench.price", store=os.path.join(tmp, "price.h5"), **decl)
    rng = np.random.default_rng(0)
    fn.mode = "capture"
    for row in rng.uniform(0.5, 1.5, (512, 5)):
        fn(*map(float, row))
    fn.train("torch", hidden=(64, 64), activation="silu", epochs=3, seed=0)
    path = fn.save(os.path.join(tmp, "model"))
    fn.close()
    surrogates = {}
    for engine in ("torch", "onnx", "auto"):
        one = phasm.surrogate(_price, name=f"bench.price_{engine}", model=path, mode="model", **decl)
        many = phasm.surrogate(_price, name=f"bench.price_b_{engine}", model=path, mode="model", batched=True, **decl)
        for f in (one, many):
            f.model.use_engine(engine)
        surrogates[engine] = (one, many)
    gated = (phasm.surrogate(_price, name="bench.price_auto", model=path, mode="auto", **decl),
             phasm.surrogate(_price, name="bench.price_b_auto", model=path, mode="auto", batched=True, **decl))
    return path, surrogates, gated


def _raw_backends(art):
    import onnxruntime as ort
    import torch

    from phasm.backends.onnx_backend import OnnxBackend

    module = art.backend.module_
    graph = OnnxBackend.from_backend(art.backend).bytes_  # the same network, standardised in and out
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    session = ort.InferenceSession(graph, so, providers=["CPUExecutionProvider"])
    return module, session, torch


def _time_blocks(fns: dict, rounds: int, per_block: int) -> dict[str, tuple[float, float]]:
    """Per function: (median, best) seconds per call over ``rounds`` interleaved blocks of ``per_block`` calls."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():  # warm-up: buffers, sessions, caches
        for _ in range(min(per_block, 20)):
            f()
    for _ in range(rounds):
        for k, f in fns.items():
            t0 = time.perf_counter()
            for _ in range(per_block):
                f()
            times[k].append((time.perf_counter() - t0) / per_block)
    return {k: (float(np.median(v)), float(np.min(v))) for k, v in times.items()}


def _breakdown(surrogate, art, n: int, rng, budget: float) -> dict[str, float]:
    """Median microseconds of each step of a batched model-mode call: read and check the inputs, pack them,
    predict (the engine, standardisation folded in), unpack the answers; the rest is the call itself."""
    from phasm.bindings.spec import pack, unpack

    spec = surrogate.spec
    cols = [rng.uniform(0.5, 1.5, n) for _ in range(5)]
    values = dict(zip((v.name for v in spec.inputs), cols))
    X = pack(spec.inputs, values, n)
    Y = art.predict(X)
    fns = {"call": lambda: surrogate(*cols),
           "read+check": lambda: [v.check_value(c, batch=n) for v, c in zip(spec.inputs, cols)],
           "pack": lambda: pack(spec.inputs, values, n), "predict": lambda: art.predict(X),
           "unpack": lambda: unpack(spec.outputs, Y)}
    t = _time_blocks(fns, 40, max(1, int(2000 / n)))
    out = {k: v[1] * 1e6 for k, v in t.items()}  # best blocks: the steps are timed apart, noise would not cancel
    out["rest of the call"] = out["call"] - sum(out[k] for k in ("read+check", "pack", "predict", "unpack"))
    return out


def _profile(fn, args, calls: int, top: int = 12) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        fn(*args)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).strip_dirs().sort_stats("tottime").print_stats(top)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
    return "\n".join(lines[start:])


def main() -> None:
    import onnxruntime as ort
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-batch", type=int, default=65536)
    ap.add_argument("--budget", type=float, default=0.4, help="seconds of timed calls per contender and batch size")
    ap.add_argument("--profile", action="store_true", help="cProfile a model-mode call at batch 1 and 1024")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch intra-op threads for raw torch and phasm's torch engine (default: torch's own)")
    ap.add_argument("--json", type=str, default=None)
    args = ap.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    rows, best = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path, surrogates, gated = _build(tmp)
        auto_engine = surrogates["auto"][0].model.inference
        module, session, _ = _raw_backends(surrogates["torch"][0].model)
        art = surrogates["onnx"][0].model
        rng = np.random.default_rng(1)
        for n in [b for b in BATCHES if b <= args.max_batch]:
            cols = [rng.uniform(0.5, 1.5, n) for _ in range(5)]
            X = np.stack(cols, axis=1).astype(np.float32)
            Z = art.x_norm.transform(X)  # raw backends get standardised rows, as the network expects
            zt = torch.from_numpy(Z.copy())
            scalars = tuple(float(c[0]) for c in cols)

            def raw_torch():
                with torch.inference_mode():
                    module(zt)

            def raw_ort():
                session.run(None, {"x": Z})

            fns = {"raw torch": raw_torch, "raw onnxruntime": raw_ort, "predict (onnx)": lambda: art.predict(X)}
            for engine, (one, many) in surrogates.items():
                fns[f"model ({engine})"] = (lambda f=one: f(*scalars)) if n == 1 else (lambda f=many: f(*cols))
            fns["auto mode"] = (lambda f=gated[0]: f(*scalars)) if n == 1 else (lambda f=gated[1]: f(*cols))
            first = time.perf_counter()
            raw_ort()
            per_call = max(time.perf_counter() - first, 1e-6)
            per_block = max(1, int(2e-3 / per_call))
            rounds = int(np.clip(args.budget / (per_call * per_block * len(fns)), 15, 400))  # >= 15: a quiet moment for each
            both = _time_blocks(fns, rounds, per_block)
            rows.append((n, {k: v[0] for k, v in both.items()}))
            best.append((n, {k: v[1] for k, v in both.items()}))
            print(f"batch {n}: " + ", ".join(f"{k} {v[0] * 1e6:.1f} us" for k, v in both.items()), flush=True)
        prof, parts = {}, {}
        if args.profile:
            one, many = surrogates["onnx"]
            prof["batch 1"] = _profile(one, tuple(float(v) for v in (1.0, 0.9, 1.1, 1.2, 0.8)), 20000)
            cols = [rng.uniform(0.5, 1.5, 1024) for _ in range(5)]
            prof["batch 1024"] = _profile(many, cols, 2000)
            for n in (16, 1024, 16384):
                parts[n] = _breakdown(many, many.model, n, rng, args.budget)
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, " + (
        "CUDA GPU present (runs used the CPU)" if torch.cuda.is_available() else "no GPU")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nMLP 5 -> 64 -> 64 -> 1 (SiLU); medians per call; machine: {machine}, load average {load:.1f}; torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {ort.__version__} (1 thread)")
    print(f"auto engine at load: {auto_engine.summary()}\n")
    for title, table in (("medians of interleaved blocks", rows), ("best block (least disturbed by other load)", best)):
        print(f"\nper call, {title}:\n")
        head = ("| batch | raw torch | raw onnxruntime | model (torch) | model (onnx) | model (auto) | auto mode | "
                "predict (onnx) | model (auto) / fastest raw |")
        print(head)
        print("|---:" * (head.count("|") - 1) + "|")
        for n, t in table:
            fastest = min(t["raw torch"], t["raw onnxruntime"])
            cells = [t[k] for k in ("raw torch", "raw onnxruntime", "model (torch)", "model (onnx)", "model (auto)",
                                    "auto mode", "predict (onnx)")]
            print(f"| {n} | " + " | ".join(_fmt(c) for c in cells) + f" | {t['model (auto)'] / fastest:.2f}x |")
    print()
    for title, table in (("medians", rows), ("best blocks", best)):
        r1 = dict(table).get(1)
        if r1:
            print(f"{title}: batch 1: model (onnx) / raw onnxruntime = {r1['model (onnx)'] / r1['raw onnxruntime']:.2f}x, "
                  f"model (auto) {r1['model (auto)'] / r1['raw onnxruntime']:.2f}x (target <= 1.3x); auto mode / raw "
                  f"onnxruntime = {r1['auto mode'] / r1['raw onnxruntime']:.2f}x (target <= 1.6x)")
        big = [(n, t[k] / min(t["raw torch"], t["raw onnxruntime"])) for n, t in table if n >= 1024
               for k in ("model (onnx)", "model (auto)")]
        if big:
            print(f"{title}: batch >= 1024: model mode / fastest raw = " + ", ".join(f"{r:.2f}x" for _, r in big[::2])
                  + " (onnx engine), " + ", ".join(f"{r:.2f}x" for _, r in big[1::2])
                  + f" (auto engine) at batch {', '.join(str(n) for n, _ in big[::2])} (target <= 1.2x)")
    if parts:
        print("\nwhere a batched model-mode call (onnx engine) spends its time, best blocks in us:\n")
        keys = ["call", "read+check", "pack", "predict", "unpack", "rest of the call"]
        print("| batch | " + " | ".join(keys) + " | wrapper share |")
        print("|---:" * (len(keys) + 2) + "|")
        for n, p in parts.items():
            share = 1 - p["predict"] / p["call"]
            print(f"| {n} | " + " | ".join(f"{p[k]:.1f}" for k in keys) + f" | {share:.0%} |")
    for k, text in prof.items():
        print(f"\nwhere a model-mode call (onnx engine) spends its time, {k} (cProfile, by own time):\n{text}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "load": load, "auto": auto_engine.to_json(), "breakdown_us": parts,
                       "median_us": [{"batch": n, **{k: v * 1e6 for k, v in t.items()}} for n, t in rows],
                       "best_us": [{"batch": n, **{k: v * 1e6 for k, v in t.items()}} for n, t in best]}, f, indent=1)


def _fmt(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:.1f} us" if us < 1000 else f"{us / 1000:.2f} ms"


if __name__ == "__main__":
    main()
