"""``auto`` mode: the model answers the rows its trust gate accepts, the original the rest.

Per call (or batch), trusted rows come from the model; rejected rows go to the
original function (as one batched call for a batched function) and are
captured for the next training round.  NaN/inf inputs or answers are never
trusted, whatever the gate says; a gate or model that raises trusts nothing.
Without a model yet, ``auto`` captures, so the data for one accrues.  An
empty batch gets empty answers, as in ``model`` mode.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from phasm.bindings.layout import InputLayout
from phasm.bindings.optics import CallFrame
from phasm.gate.base import Gate, all_finite, finite_rows
from phasm.surrogate.batching import Batch
from phasm.surrogate.calls import Parts, observe, record, run_original
from phasm.surrogate.deferred import guarded
from phasm.surrogate.rows import results_of_rows

__all__ = ["answer_call", "call_auto", "fallback_call", "flush_auto", "gated_predict"]


def call_auto(p: Parts, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``auto``: model answers behind the gate; rejected rows fall back to the original and are captured."""
    c = p.counters
    c.calls += 1
    model, gate = p.slot.pair  # one read: a concurrent hot swap cannot split the pair
    codec = p.codec
    plan = codec.plan
    if model is None or plan is None:
        c.fallbacks += codec.batch_size(codec.frame(args, kwargs)) if (p.batched and plan is not None) else 1
        frame, ins = observe(p, args, kwargs)
        record(p, frame, ins)
        return frame.result
    frame, X, n, positional = codec.model_inputs(args, kwargs)
    if n == 0:  # an empty batch: empty answers, as model mode gives them
        c.model_calls += 1
        return codec.put_outputs(frame, np.empty((0, plan.spec.n_out_features), np.float32))
    t0 = time.perf_counter()
    Y, trusted = gated_predict(plan.layout, model, gate, X, n, plan.spec.n_out_features)
    c.time_model += time.perf_counter() - t0
    return answer_call(p, frame, args, kwargs, positional, Y if positional or not p.batched else codec.own_rows(Y, X),
                       trusted, n)


def answer_call(p: Parts, frame: CallFrame, args: tuple[Any, ...], kwargs: dict[str, Any], positional: bool,
                Y: np.ndarray, trusted: np.ndarray | bool, n: int) -> Any:
    """One call after the gate: its ``n`` answers ``Y`` and the rows to trust (``True``: one trusted call).
    Trusted rows are the model's; the others are the original's, and are captured."""
    c = p.counters
    codec = p.codec
    if trusted is True:  # one call, trusted: the latency-critical path
        c.model_rows += 1
        c.rows += 1
        c.model_calls += 1
        if p.shadow_fraction > 0:
            maybe_shadow(p, codec.frame(args, kwargs) if positional else frame, Y, n)
        return codec.put_outputs(frame, Y)
    mask = np.asarray(trusted, bool).reshape(n)
    n_trusted = int(mask.sum())
    c.model_rows += n_trusted
    c.rows += n
    shadow = None
    if p.batched and p.shadow_fraction > 0 and n_trusted:
        # Shadow-check single rows, not whole batches: a batch answered whole is an easy one.
        picked = mask & (p.rng.random(n) < p.shadow_fraction)
        shadow = picked if picked.any() else None
    if n_trusted == n:
        c.model_calls += 1
        if shadow is not None:
            return batched_fallback(p, frame, Y, mask, shadow)
        return codec.put_outputs(frame, Y)
    c.fallbacks += n - n_trusted
    if p.retrain_after_rows:
        p.retrain_if_due()
    if not p.batched:  # one call: the original answers it whole, and the row is captured
        return fallback_call(p, frame, args, kwargs, positional)
    return batched_fallback(p, frame, Y, mask, shadow)


def fallback_call(p: Parts, frame: CallFrame, args: tuple[Any, ...], kwargs: dict[str, Any], positional: bool) -> Any:
    """A refused call of an unbatched function: the original answers it, and the row is captured."""
    codec = p.codec
    if positional:
        frame = codec.frame(args, kwargs)
    ins = codec.read_inputs(frame)
    frame.result = run_original(p, args, kwargs)
    record(p, frame, ins, count_rows=False)
    return frame.result


def flush_auto(p: Parts, batch: Batch) -> list[Any]:
    """``auto``, deferred: one gated model evaluation for every queued call; then each call as
    :func:`answer_call` finishes it (refused rows: the original, one call at a time, captured)."""
    c = p.counters
    model, gate = p.slot.pair  # one read, as for one call
    codec = p.codec
    plan = codec.plan
    if model is None or plan is None:  # the model went away after the calls: each runs now, as auto runs it
        outcomes = []
        for i in range(len(batch.calls)):
            args, kwargs, _, _, _ = batch.call(i)
            c.calls -= 1  # counted when it was queued; call_auto counts it again
            outcomes.append(guarded(call_auto, p, args, kwargs))
        return outcomes
    X, sizes = batch.inputs()
    N = len(X)
    t0 = time.perf_counter()
    Y, trusted = gated_predict(plan.layout, model, gate, X, N, plan.spec.n_out_features)
    c.time_model += time.perf_counter() - t0
    Y = codec.own_rows(Y, X)
    mask = np.ones(N, bool) if trusted is True else np.asarray(trusted, bool).reshape(N)
    if sizes is None and not p.shadow_fraction:
        results = results_of_rows(plan, Y)
        if results is not None:  # plain calls of floats: answers built at once, refused calls run one by one
            refused = np.flatnonzero(~mask).tolist()
            c.model_rows += N - len(refused)
            c.model_calls += N - len(refused)
            c.rows += N
            for i in refused:
                c.fallbacks += 1
                if p.retrain_after_rows:
                    p.retrain_if_due()
                results[i] = guarded(fallback_call, p, CallFrame({}), batch.calls[i], {}, True)
            return results
    outcomes = []
    row = 0
    for i in range(len(batch.calls)):
        args, kwargs, frame, positional, n = batch.call(i)
        ok: np.ndarray | bool = mask[row : row + n] if p.batched else (True if mask[row] else np.zeros(1, bool))
        outcomes.append(guarded(answer_call, p, frame, args, kwargs, positional, Y[row : row + n], ok, n))
        row += n
    return outcomes


def gated_predict(layout: InputLayout[Any], model: Any, gate: Gate, X: Any, n: int,
                  n_out: int) -> tuple[np.ndarray, np.ndarray | bool]:
    """The model's answers and the rows to trust: ``True`` for one finite trusted call, else a mask.

    Non-finite inputs or answers are never trusted, whatever the gate says; a gate or model that
    raises trusts nothing.
    """
    try:
        Y, trusted = gate.predict_accept(X, model)
    except Exception:
        return np.full((n, n_out), np.nan, np.float32), np.zeros(n, bool)
    if n == 1:
        ok = ((trusted is True or bool(np.asarray(trusted).all()))
              and (gate.refuses_nonfinite_inputs or layout.all_finite(X)) and all_finite(Y))
        return Y, (True if ok else np.zeros(1, bool))
    mask = np.ones(n, bool) if trusted is True else np.asarray(trusted, bool).reshape(n)
    return Y, mask & layout.finite_rows(X) & finite_rows(Y)


def maybe_shadow(p: Parts, frame: CallFrame, Y: np.ndarray, n: int) -> None:
    """For a ``shadow_fraction`` of model-answered calls, run the original too and score the model."""
    if p.rng.random() >= p.shadow_fraction:
        return
    codec = p.codec
    spec = codec.spec
    assert spec is not None
    if any(v.direction == "inout" for v in spec.inputs):
        return  # the original would overwrite the caller's array; shadow mode handles inout
    check = CallFrame(dict(frame.args))
    args, kwargs = codec.call_args(check)
    check.result = run_original(p, args, kwargs)
    outs = codec.read_outputs(check)
    p.counters.record_shadow(spec, p.tolerance, Y, codec.pack_outputs(outs, n, np.float64))


def batched_fallback(p: Parts, frame: CallFrame, Y: np.ndarray, trusted: np.ndarray,
                     shadow: np.ndarray | None = None) -> Any:
    """Rejected rows (and rows picked for a shadow check) go to the original as one batched call;
    results merge row by row, and shadow rows' model answers are scored against the original's."""
    codec = p.codec
    spec = codec.spec
    assert spec is not None
    rejected = np.flatnonzero(~trusted if shadow is None else (~trusted | shadow))
    sub = CallFrame(dict(frame.args))
    n = len(trusted)
    for name, value in frame.args.items():
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == n:
            sub.args[name] = value[rejected]  # a copy: inout writes land here first
    ins = codec.read_inputs(sub)
    args, kwargs = codec.call_args(sub)
    sub.result = run_original(p, args, kwargs)
    outs = codec.read_outputs(sub)
    if shadow is not None:
        exact = codec.pack_outputs(outs, len(rejected), np.float64)
        checked = shadow[rejected]
        p.counters.record_shadow(spec, p.tolerance, Y[rejected][checked], exact[checked])
    Y = Y.copy()
    Y[rejected] = codec.pack_outputs(outs, len(rejected), Y.dtype)
    p.counters.captured_rows += p.sink.append_batch(spec, ins, outs)
    if Y.dtype != np.float64 and any(v.dtype == np.float64 for v in spec.outputs):
        # Keep the original's exact float64 answers for rejected rows.
        return codec.merge_exact(frame, Y, rejected, outs)
    return codec.put_outputs(frame, Y)
