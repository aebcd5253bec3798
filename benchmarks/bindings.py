"""Binding cost: reading/writing an object's fields through optics, and bulk extraction of collections.

Run: .venv/bin/python benchmarks/bindings.py       (prints a table; ~20 s)

Targets (issue 4): binding an object with 10 scalar fields costs <= 10 us per
call; extracting a collection of 1e5 objects runs at >= 1e6 fields/s.  Each
row compares with hand-written Python doing the same work, measured in the
same run.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import phasm
from phasm.bindings import CallFrame, Each

FIELDS = [f"f{i}" for i in range(10)]


@dataclasses.dataclass
class Obj10:
    f0: float
    f1: float
    f2: float
    f3: float
    f4: float
    f5: float
    f6: float
    f7: float
    f8: float
    f9: float


def best_of(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def per_call_us(body, n: int) -> float:
    def loop() -> None:
        for _ in range(n):
            body()
    return best_of(loop) / n * 1e6


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, no GPU, Python {platform.python_version()}"


def main() -> None:
    rng = np.random.default_rng(0)
    obj = Obj10(*map(float, rng.random(10)))
    frame = CallFrame({"obj": obj})
    variables = phasm.fields("obj", Obj10)
    optics = [v.optic for v in variables.values()]
    rows = []

    # 1. per call: read 10 fields through their optics into a model row
    row = np.empty(10, np.float32)

    def read_optics() -> None:
        for j, o in enumerate(optics):
            row[j] = o.get(frame)

    def read_by_hand() -> None:
        o = frame.args["obj"]
        row[:] = (o.f0, o.f1, o.f2, o.f3, o.f4, o.f5, o.f6, o.f7, o.f8, o.f9)

    n = 100_000
    t_opt, t_hand = per_call_us(read_optics, n), per_call_us(read_by_hand, n)
    rows.append(("read 10 fields (optics -> row), per call", f"{t_opt:.2f} us", f"{t_hand:.2f} us", "<= 10 us", t_opt <= 10))

    # 2. per call: write 10 model outputs back into the object
    values = [float(x) for x in rng.random(10)]

    def write_optics() -> None:
        for o, v in zip(optics, values):
            o.put(frame, v)

    def write_by_hand() -> None:
        for f, v in zip(FIELDS, values):
            setattr(obj, f, v)

    t_opt, t_hand = per_call_us(write_optics, n), per_call_us(write_by_hand, n)
    rows.append(("write 10 fields back (optics), per call", f"{t_opt:.2f} us", f"{t_hand:.2f} us", "<= 10 us", t_opt <= 10))

    # 3. per call: build a returned dataclass from 10 outputs
    ret_optics = [v.optic for v in phasm.fields("return", Obj10).values()]

    def build_return() -> None:
        fr = CallFrame({})
        for o, v in zip(ret_optics, values):
            o.put(fr, v)
        phasm.bindings.finish_frame(fr)

    t_opt, t_hand = per_call_us(build_return, n // 2), per_call_us(lambda: Obj10(*values), n // 2)
    rows.append(("build returned dataclass (10 outputs), per call", f"{t_opt:.2f} us", f"{t_hand:.2f} us", "<= 10 us", t_opt <= 10))

    # 4. whole wrapper: capture mode with 10 attribute inputs (store write included) minus the bare call
    with tempfile.TemporaryDirectory() as tmp:
        def kernel(obj: Obj10) -> float:
            return obj.f0 + obj.f9

        cap = phasm.surrogate(kernel, inputs=variables, outputs={"y": phasm.Scalar()}, store=Path(tmp) / "b.h5",
                              mode="capture", flush_rows=8192, name="bench.bindings")
        cap(obj)
        m = 50_000
        t_cap = per_call_us(lambda: cap(obj), m)
        t_bare = per_call_us(lambda: kernel(obj), m)
        cap.close()
    rows.append(("capture mode, 10 attribute inputs, per call", f"{t_cap - t_bare:.2f} us", f"{t_bare:.2f} us (bare call)",
                 "(info)", True))

    # 4b. capture mode with a ragged input: a list of 10 objects x 4 fields per call (store write included)
    hits = [Obj10(*map(float, rng.random(10))) for _ in range(10)]
    with tempfile.TemporaryDirectory() as tmp:
        def count(hits: list) -> float:
            return float(len(hits))

        capr = phasm.surrogate(count, inputs={"hits": phasm.each("hits", fields=FIELDS[:4])}, outputs={"n": phasm.Scalar()},
                               store=Path(tmp) / "r.h5", mode="capture", flush_rows=8192, name="bench.ragged")
        capr(hits)
        m = 20_000
        t_capr = per_call_us(lambda: capr(hits), m)
        t_bare = per_call_us(lambda: count(hits), m)
        capr.close()
    rows.append(("capture mode, each() of 10 objects x 4 fields, per call", f"{t_capr - t_bare:.2f} us",
                 f"{t_bare:.2f} us (bare call)", "(info)", True))

    # 5. bulk: each element of a list of 1e5 objects -> (1e5, 10)
    N = 100_000
    objs = [Obj10(*map(float, r)) for r in rng.random((N, 10))]
    each = Each("objs", fields=FIELDS)
    fr = CallFrame({"objs": objs})
    t_each = best_of(lambda: each.get(fr), 3)
    t_hand = best_of(lambda: np.array([[o.f0, o.f1, o.f2, o.f3, o.f4, o.f5, o.f6, o.f7, o.f8, o.f9] for o in objs]), 3)
    assert np.array_equal(each.get(fr), np.array([[getattr(o, f) for f in FIELDS] for o in objs]))
    rate = N * 10 / t_each
    rows.append(("each(): 1e5 objects x 10 fields -> array", f"{rate / 1e6:.1f} M fields/s", f"{N * 10 / t_hand / 1e6:.1f} M fields/s",
                 ">= 1 M fields/s", rate >= 1e6))

    dicts = [dict(zip(FIELDS, map(float, r))) for r in rng.random((N, 10))]
    frd = CallFrame({"objs": dicts})
    t_d = best_of(lambda: each.get(frd), 3)
    t_hand = best_of(lambda: np.array([[d[f] for f in FIELDS] for d in dicts]), 3)
    rows.append(("each(): 1e5 dicts x 10 keys -> array", f"{N * 10 / t_d / 1e6:.1f} M fields/s", f"{N * 10 / t_hand / 1e6:.1f} M fields/s",
                 ">= 1 M fields/s", N * 10 / t_d >= 1e6))

    # 6. bulk over calls: 1e5 frames, a batch of ragged collections (1-20 objects each)
    frames = [CallFrame({"objs": objs[i : i + int(k)]}) for i, k in zip(range(0, N, 10), rng.integers(1, 21, N // 10))]
    total = sum(len(f.args["objs"]) for f in frames)
    t_batch = best_of(lambda: each.get_batch(frames), 3)
    rows.append((f"each().get_batch: {len(frames)} calls, {total} objects", f"{total * 10 / t_batch / 1e6:.1f} M fields/s", "",
                 ">= 1 M fields/s", total * 10 / t_batch >= 1e6))

    # 7. write back: 1e5 rows into new objects of a class
    out = Each("return", fields=FIELDS, cls=Obj10)
    vals = each.get(fr)
    t_put = best_of(lambda: out.put(CallFrame({}), vals), 3)
    rows.append(("each(): build 1e5 objects from (1e5, 10)", f"{N * 10 / t_put / 1e6:.1f} M fields/s", "", "(info)", True))

    print(f"phasm bindings benchmark on {machine()}")
    head = ("measure", "phasm", "hand-written Python", "target", "met")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(5)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for r in rows:
        cells = [*r[:4], "yes" if r[4] else "NO"]
        print("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)))


if __name__ == "__main__":
    main()
