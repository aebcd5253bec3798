"""One handler per call mode, and the table ``{Mode: handler}`` a surrogate dispatches through.

Adding a mode means adding a :class:`~phasm.surrogate.mode.Mode`, one handler
function here (``handler(parts, args, kwargs)``, see :mod:`phasm.surrogate.calls`),
and its row in :data:`HANDLERS`.  ``auto`` lives in :mod:`phasm.surrogate.auto`.
A mode whose calls may be deferred and answered together (inside
``phasm.batching()``, :mod:`phasm.surrogate.batching`) also has a batch step,
``flush(parts, batch) -> outcomes``, in :data:`DEFERRABLE`.

Example
-------
>>> sorted(m.value for m in HANDLERS)
['auto', 'capture', 'model', 'original', 'shadow', 'summarize']
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from phasm.surrogate.auto import call_auto, flush_auto
from phasm.surrogate.batching import Batch, Flush
from phasm.surrogate.calls import Handler, Parts, observe, record, run_original
from phasm.surrogate.deferred import guarded
from phasm.surrogate.rows import results_of_rows
from phasm.surrogate.mode import Mode

__all__ = ["DEFERRABLE", "HANDLERS", "call_capture", "call_model", "call_original", "call_shadow", "call_summarize",
           "flush_model"]


def call_original(p: Parts, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``original``: the function, nothing else (counted, not timed: the cheapest path there is)."""
    c = p.counters
    c.calls += 1
    c.original_calls += 1
    return p.__wrapped__(*args, **kwargs)


def call_capture(p: Parts, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``capture``: the function answers; its inputs and outputs go to the store."""
    p.counters.calls += 1
    frame, ins = observe(p, args, kwargs)
    record(p, frame, ins)
    return frame.result


def call_model(p: Parts, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``model``: the model answers every call (an error without one)."""
    c = p.counters
    c.calls += 1
    model = p.slot.pair[0]
    if model is None:
        model = p.slot.require_model()
    codec = p.codec
    frame, X, n, positional = codec.model_inputs(args, kwargs)
    # A batched call whose one output is a float32 array argument: the model writes into it directly.
    out = None if positional or not p.batched else codec.bound_output(frame, X, n)
    t0 = time.perf_counter()
    Y = model.predict(X) if out is None else model.predict(X, out)
    c.time_model += time.perf_counter() - t0
    c.model_calls += 1
    c.model_rows += n
    c.rows += n
    return codec.put_outputs(frame, Y if positional or not p.batched else codec.own_rows(Y, X))


def flush_model(p: Parts, batch: Batch) -> list[Any]:
    """``model``, deferred: one model evaluation for every queued call; each call's outputs written back."""
    c = p.counters
    model = p.slot.pair[0]
    if model is None:
        model = p.slot.require_model()
    codec = p.codec
    X, sizes = batch.inputs()
    t0 = time.perf_counter()
    Y = codec.own_rows(model.predict(X), X)
    c.time_model += time.perf_counter() - t0
    c.model_calls += len(batch.calls)
    c.model_rows += len(Y)
    c.rows += len(Y)
    plan = codec.plan
    if sizes is None and plan is not None:
        results = results_of_rows(plan, Y)
        if results is not None:
            return results
    outcomes = []
    row = 0
    for i in range(len(batch.calls)):
        _, _, frame, _, n = batch.call(i)
        outcomes.append(guarded(codec.put_outputs, frame, Y[row : row + n]))
        row += n
    return outcomes


def call_shadow(p: Parts, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``shadow``: both answer; the caller gets the original's answer, the counters the model's error."""
    c = p.counters
    c.calls += 1
    codec = p.codec
    model = p.slot.pair[0]
    if model is None or codec.plan is None:
        frame, ins = observe(p, args, kwargs)
        record(p, frame, ins)
        return frame.result
    frame = codec.frame(args, kwargs)
    X, n = codec.pack_frame(frame)
    ins = codec.read_inputs(frame)
    t0 = time.perf_counter()
    Y = model.predict(X)
    c.time_model += time.perf_counter() - t0
    frame.result = run_original(p, args, kwargs)
    outs = codec.read_outputs(frame)
    spec = codec.spec
    assert spec is not None
    c.record_shadow(spec, p.tolerance, Y, codec.pack_outputs(outs, n, np.float64))
    c.rows += n
    c.captured_rows += (p.sink.append_batch if p.batched else p.sink.append_row)(spec, ins, outs)
    return frame.result


def call_summarize(p: Parts, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``summarize``: the function answers; per-variable ranges and moments are recorded."""
    c = p.counters
    c.calls += 1
    frame, ins = observe(p, args, kwargs)
    codec = p.codec
    outs = codec.read_outputs(frame)
    spec = codec.spec
    assert spec is not None
    p.sink.summarize("in", spec.inputs, ins)
    p.sink.summarize("out", spec.outputs, outs)
    c.rows += codec.rows_of(frame)
    return frame.result


HANDLERS: dict[Mode, Handler] = {
    Mode.ORIGINAL: call_original,
    Mode.CAPTURE: call_capture,
    Mode.MODEL: call_model,
    Mode.AUTO: call_auto,
    Mode.SHADOW: call_shadow,
    Mode.SUMMARIZE: call_summarize,
}

#: modes whose calls can be deferred and answered together (inside ``phasm.batching()``): their batch step.
#: Calls in the other modes run at once, batching or not.
DEFERRABLE: dict[Mode, Flush] = {
    Mode.MODEL: flush_model,
    Mode.AUTO: flush_auto,
}
