"""What every call handler works with: the parts of a surrogate, and the steps modes share.

A handler is a function ``handler(parts, args, kwargs)``.  ``parts`` is the
surrogate itself, seen through :class:`Parts`: its call codec, model slot,
capture sink, counters, spec source and batcher, and a few settings.  Handlers touch
nothing else, so a mode is one small function (see :mod:`phasm.surrogate.handlers`).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol

import numpy as np

from phasm.bindings.optics import CallFrame
from phasm.gate.tolerance import Tolerance
from phasm.surrogate.batching import Batcher
from phasm.surrogate.codec import CallCodec
from phasm.surrogate.counters import Counters
from phasm.surrogate.mode import Mode
from phasm.surrogate.sink import CaptureSink
from phasm.surrogate.slot import ModelSlot
from phasm.surrogate.specs import SpecSource

__all__ = ["Handler", "Parts", "observe", "record", "run_original"]


class Parts(Protocol):
    """The parts of a surrogate a call handler may use."""

    name: str
    batched: bool
    tolerance: Tolerance | None
    shadow_fraction: float
    retrain_after_rows: int | None
    rng: np.random.Generator
    codec: CallCodec
    slot: ModelSlot
    sink: CaptureSink
    counters: Counters
    specs: SpecSource
    batcher: Batcher

    @property
    def __wrapped__(self) -> Callable[..., Any]: ...

    @property
    def mode(self) -> Mode: ...

    def retrain_if_due(self) -> None: ...


Handler = Callable[[Parts, tuple[Any, ...], dict[str, Any]], Any]


def run_original(p: Parts, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call the original function, counted and timed."""
    c = p.counters
    t0 = time.perf_counter()
    try:
        return p.__wrapped__(*args, **kwargs)
    finally:
        c.time_original += time.perf_counter() - t0
        c.original_calls += 1


def observe(p: Parts, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[CallFrame, list[Any]]:
    """Run the original on a call and return its frame (result included) and its input values.

    The first call of an undeclared function fixes the spec: inferred from this call, with
    arrays the call changed in place as ``inout`` variables (their input value is the one
    before the call).
    """
    codec = p.codec
    frame = codec.frame(args, kwargs)
    if codec.plan is None:
        before = codec.snapshot_arrays(frame)
        frame.result = run_original(p, args, kwargs)
        codec.bind(p.specs.from_call(frame, codec.mutated(frame, before)))
        return frame, codec.inputs_before_call(frame, before)
    ins = codec.read_inputs(frame)
    frame.result = run_original(p, args, kwargs)
    return frame, ins


def record(p: Parts, frame: CallFrame, ins: list[Any], *, count_rows: bool = True) -> None:
    """Capture a finished call: its inputs ``ins`` and the outputs read from ``frame``
    (``count_rows=False``: its rows were counted already)."""
    codec = p.codec
    outs = codec.read_outputs(frame)
    spec = codec.spec
    assert spec is not None
    c = p.counters
    if p.batched:
        c.rows += codec.batch_size(frame) if count_rows else 0
        c.captured_rows += p.sink.append_batch(spec, ins, outs)
    else:
        c.rows += 1 if count_rows else 0
        c.captured_rows += p.sink.append_row(spec, ins, outs)
