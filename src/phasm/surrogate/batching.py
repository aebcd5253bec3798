"""Transparent batching of per-call sites: calls queue up and are answered together.

Inside ``with phasm.batching(max_batch=4096):`` (every surrogate, every thread) or
``with fn.batching():`` (one surrogate), a call in a mode that has a *deferrable*
step (``model``, ``auto``: the table :data:`~phasm.surrogate.handlers.DEFERRABLE`)
checks its inputs at once (bad input is still an error at the call; a plain call
of floats keeps its argument tuple, packed with the whole batch) and returns a :class:`~phasm.surrogate.deferred.Deferred`; calls in other modes
run at once and return plain values.  The queued calls of one surrogate, from any
thread, are answered together, in one model evaluation (and, in ``auto``, the
refused rows by the original, one call at a time, captured):

* when the queue holds ``max_batch`` rows (the call that fills it computes it);
* when any of its deferred values is first used (the thread that uses it computes it;
  another thread that uses one meanwhile waits for that result);
* when the block ends, and before the surrogate's mode, model, gate or store change.

Outputs written through optics (``inout`` arrays, attributes, setters) are written
at that moment, not at the call; the inputs a model row is made of are read at the
call.  The answers are the model's answers for those rows computed as one batch:
the same numbers ``fn.map`` / ``fn.batch`` and a batched call give for them.

Each surrogate holds a :class:`Batcher` (``fn.batcher``): its queue, under a lock.
A block switches the call handlers of the surrogates it covers to
:func:`call_deferred` (or :func:`value_row_handler`, its fast path for functions of
floats returning one scalar), which wrap the mode's handler; leaving the last block
switches them back, so calls outside any block pay nothing for this.

Example
-------
>>> import phasm
>>> from phasm.surrogate.deferred import Deferred
>>> @phasm.surrogate(mode="original")
... def f(x: float) -> float:
...     return 2 * x
>>> with phasm.batching():
...     y = f(1.5)       # original mode: not deferred
>>> y, type(y).__name__
(3.0, 'float')
"""

from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Protocol

import numpy as np

from phasm.bindings.optics import CallFrame
from phasm.errors import BatchingError
from phasm.surrogate.codec import FLOAT_TYPES
from phasm.surrogate.deferred import Deferred, Failure, deferred_form, deliver, failed_errors
from phasm.surrogate.stochastic import call_generator
from phasm.surrogate.rows import rows_of_args, rows_of_columns

# The surrogate a handler gets (phasm.surrogate.calls.Parts, which holds a Batcher: typed loosely here).
Parts = Any
Handler = Callable[[Any, tuple[Any, ...], dict[str, Any]], Any]

__all__ = ["DEFAULT_MAX_BATCH", "Batch", "Batcher", "Call", "ColumnCalls", "Flush", "answer_now", "batching",
           "call_deferred", "register", "value_row_handler"]

DEFAULT_MAX_BATCH = 4096


class Call:
    """One deferred call that is not a plain row of floats: its arguments, its frame and its model rows."""

    __slots__ = ("args", "kwargs", "frame", "X", "n", "positional")

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any], frame: CallFrame, X: np.ndarray, n: int,
                 positional: bool) -> None:
        self.args, self.kwargs, self.frame, self.X, self.n, self.positional = args, kwargs, frame, X, n, positional


class Batch:
    """Deferred calls of one surrogate in one mode, answered together by :meth:`run`.

    ``calls``: per call, its argument tuple (a plain row of floats, :attr:`CallPlan.float_row`) or a
    :class:`Call`; ``targets``: per call, what its caller holds (a Deferred, or a tuple or dict of them).
    """

    __slots__ = ("batcher", "parts", "flush", "limit", "calls", "targets", "rows", "state", "lock", "columns")

    def __init__(self, batcher: Batcher, parts: Parts, flush: Flush, limit: int) -> None:
        self.batcher, self.parts, self.flush, self.limit = batcher, parts, flush, limit
        self.calls: Any = []  # a list; for calls given as argument columns, a sequence of their tuples
        self.columns: tuple[np.ndarray, ...] | None = None
        self.targets: list[Any] = []
        self.rows = 0
        self.state = "open"  # -> "running" -> "done"
        self.lock = threading.RLock()

    def run(self) -> None:
        """Answer every call of the batch (once; a second caller waits for the first)."""
        with self.lock:
            if self.state == "done":
                return
            if self.state == "running":  # used by the code that computes it (an original that reads it)
                raise BatchingError(f"{self.batcher.name}: a deferred result was used while its own batch was being "
                                    "computed (e.g. by the original function of a fallback); use it after the call")
            self.state = "running"
            self.batcher.detach(self)
            try:
                outcomes = self.flush(self.parts, self)
            except Exception as exc:  # the whole evaluation failed: every call of it did
                outcomes = [Failure(exc)] * len(self.calls)
            except BaseException as exc:  # KeyboardInterrupt, SystemExit: the calls fail, and it goes on up
                self._finish([Failure(exc)] * len(self.calls))
                raise
            self._finish(outcomes)

    def _finish(self, outcomes: list[Any]) -> None:
        failed = deliver(self.targets, outcomes)
        if failed:
            with self.batcher.lock:
                self.batcher.errors.extend(failed)
        self.batcher.flushes += 1
        self.state = "done"

    def inputs(self) -> tuple[np.ndarray, list[int] | None]:
        """The model rows of every call, in order, as one float32 matrix; and each call's row count
        (``None``: one row each, all plain rows of floats, gathered in one pass)."""
        codec = self.parts.codec
        plan = codec.plan
        assert plan is not None
        calls = self.calls
        if self.columns is not None:
            return rows_of_columns(plan, self.columns), None
        if all(type(e) is tuple for e in calls):
            return rows_of_args(plan, calls), None
        rows = [codec.model_inputs(e, {})[1] if type(e) is tuple else e.X for e in calls]
        sizes = [len(r) for r in rows]
        X = plan.buffers.get(sum(sizes))
        np.concatenate(rows, out=X)
        return X, sizes

    def call(self, i: int) -> tuple[tuple[Any, ...], dict[str, Any], CallFrame, bool, int]:
        """Call ``i`` as ``(args, kwargs, frame, positional, rows)`` (a plain positional call: an empty frame)."""
        e = self.calls[i]
        if type(e) is tuple:
            return e, {}, CallFrame({}), True, 1
        return e.args, e.kwargs, e.frame, e.positional, e.n

#: a deferrable mode's step: answer a batch's calls, one outcome (a value or a Failure) per call
Flush = Callable[[Any, Batch], list[Any]]


class _Owner(Protocol):
    """What a block switches: a surrogate (its handler is resolved again) with its batcher."""

    batcher: Batcher

    def refresh_handler(self) -> None: ...


class Batcher:
    """A surrogate's queue of deferred calls and its open ``fn.batching()`` blocks (see the module docstring)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.pending: Batch | None = None
        self.blocks: list[int] = []  # max_batch of this surrogate's open blocks, in the order opened
        self.errors: list[Deferred] = []  # deferred values that failed, for the end of the block
        self.flushes = 0
        #: the mode's deferrable step and its ordinary handler, set when the handler is resolved
        self.flush: Flush | None = None
        self.immediate: Handler | None = None

    @property
    def active(self) -> bool:
        """Whether calls of this surrogate are deferred now (a block of its own, or a ``phasm.batching`` block)."""
        return bool(self.blocks) or bool(SCOPE.blocks)

    @property
    def max_batch(self) -> int:
        """Rows a queue holds before it is computed: the innermost open block's ``max_batch``."""
        blocks = self.blocks or SCOPE.blocks
        return blocks[-1] if blocks else DEFAULT_MAX_BATCH

    def handler(self, flush: Flush, immediate: Handler, parts: Parts) -> Handler:
        """The handler of a deferrable mode while batching: :func:`call_deferred`, or, for a function of
        floats returning one scalar, a handler specialised for its plan (:func:`value_row_handler`)."""
        self.flush, self.immediate = flush, immediate
        plan = parts.codec.plan
        if plan is not None and plan.value_row:
            return value_row_handler(parts, plan, self, flush)
        return call_deferred

    def add(self, parts: Parts, entry: Any, rows: int, form: tuple[Any, ...] | None) -> Any:
        """Queue one call (``rows`` model rows); compute the queue once it is full.  Returns what the caller
        gets: a Deferred, or a tuple or dict of them (``form``: :attr:`CallPlan.result_form`)."""
        flush = self.flush
        assert flush is not None
        with self.lock:
            batch = self.pending
            if batch is None or batch.flush is not flush:
                batch = self.pending = Batch(self, parts, flush, self.max_batch)
            target: Any = Deferred(batch) if form is None or form[0] == "value" else deferred_form(form, batch)
            batch.calls.append(entry)
            batch.targets.append(target)
            batch.rows += rows
            full = batch.rows >= batch.limit
            if full:
                self.pending = None
        if full:
            batch.run()
        return target

    def detach(self, batch: Batch) -> None:
        """Take ``batch`` off the queue: calls from now on start a new one."""
        with self.lock:
            if self.pending is batch:
                self.pending = None

    def flush_pending(self) -> None:
        """Compute the queued calls now (nothing queued: nothing to do)."""
        batch = self.pending
        if batch is not None:
            batch.run()

    def unclaimed_errors(self) -> list[BaseException]:
        """Errors of failed deferred calls nobody has seen (their values never used); forgets all."""
        with self.lock:
            errors, self.errors = self.errors, []
        return failed_errors(errors)

    @contextmanager
    def block(self, owner: _Owner, max_batch: int) -> Iterator[None]:
        """The body of ``fn.batching()``: defer this surrogate's calls; compute what is left at the end."""
        max_batch = check_max_batch(max_batch)
        with self.lock:
            self.blocks.append(max_batch)
        owner.refresh_handler()
        ok = False
        try:
            yield
            ok = True
        finally:
            try:
                self.flush_pending()
            finally:
                with self.lock:
                    self.blocks.remove(max_batch)
                owner.refresh_handler()
            errors = self.unclaimed_errors()
            if ok and errors:
                raise errors[0]


def value_row_handler(p: Parts, plan: Any, b: Batcher, flush: Flush) -> Handler:
    """:func:`call_deferred` specialised for a function whose arguments are the model's row of floats and
    which returns one scalar (:attr:`CallPlan.value_row`): a call of ``n_in`` Python floats is queued with
    nothing else done (most per-call sites); any other call, or a changed plan or model, takes the general path.
    """
    codec, slot, counters = p.codec, p.slot, p.counters
    acquire, release = b.lock.acquire, b.lock.release  # cheaper than `with lock:` on this path
    all_float = (float,) * plan.n_in

    def call(p: Parts, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if kwargs or tuple(map(type, args)) != all_float or codec.plan is not plan or slot.pair[0] is None:
            return call_deferred(p, args, kwargs)
        counters.calls += 1
        acquire()
        try:
            batch = b.pending
            if batch is None or batch.flush is not flush:
                batch = b.pending = Batch(b, p, flush, b.max_batch)
            d = Deferred(batch)
            batch.calls.append(args)
            batch.targets.append(d)
            batch.rows += 1
            if batch.rows < batch.limit:
                return d
            b.pending = None
        finally:
            release()
        batch.run()
        return d

    return call


def call_deferred(p: Parts, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The handler of a deferrable mode while batching: queue the call, return its deferred value.

    The call runs at once, through the mode's own handler, when there is nothing to defer: no model
    yet (``auto`` captures, ``model`` says there is none), no spec yet, variable-length inputs, or an
    empty batch.  Inputs are checked and packed now; a plain positional call of floats keeps its
    argument tuple, packed with the whole batch.
    """
    plan = p.codec.plan
    if plan is not None and plan.float_row and not kwargs and len(args) == plan.n_in and p.slot.pair[0] is not None:
        for a in args:  # a plain row of floats: kept as its argument tuple, gathered with the whole batch
            t = type(a)
            if t is not float and t not in FLOAT_TYPES:
                break
        else:
            p.counters.calls += 1
            return p.batcher.add(p, args, 1, plan.result_form)
    return _defer_call(p, args, kwargs)


def _defer_call(p: Parts, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """:func:`call_deferred` for any other call: packed as one call is (errors raised now), or run at once."""
    b = p.batcher
    codec = p.codec
    plan = codec.plan
    if plan is None or p.slot.pair[0] is None or plan.layout.ragged:
        assert b.immediate is not None
        return b.immediate(p, args, kwargs)
    if p.random_argument is not None and call_generator(codec.signature, p.random_argument, args, kwargs) is not None:
        assert b.immediate is not None  # the caller's generator draws this sample: answered now, as outside a block
        return b.immediate(p, args, kwargs)
    frame, X, n, positional = codec.model_inputs(args, kwargs)
    if n == 0:
        assert b.immediate is not None
        return b.immediate(p, args, kwargs)
    p.counters.calls += 1
    if p.batched:
        X = X.copy()  # the rows lie in a reused buffer or in the caller's array, which may change before the flush
    return b.add(p, Call(args, kwargs, frame, X, n, positional), n, plan.result_form)


def check_max_batch(max_batch: Any) -> int:
    if isinstance(max_batch, bool) or not isinstance(max_batch, (int, np.integer)) or max_batch < 1:
        raise BatchingError(f"batching: max_batch must be an integer >= 1, got {max_batch!r}")
    return int(max_batch)


# -- phasm.batching(): every surrogate, every thread --------------------------------------------


class _Scope:
    """Open ``phasm.batching()`` blocks and the surrogates they switch."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.blocks: list[int] = []
        self.owners: weakref.WeakSet[Any] = weakref.WeakSet()

    def live(self) -> list[_Owner]:
        with self.lock:
            return list(self.owners)


SCOPE = _Scope()


def register(owner: _Owner) -> None:
    """Let ``phasm.batching()`` blocks switch ``owner`` (every surrogate registers itself when created)."""
    with SCOPE.lock:
        SCOPE.owners.add(owner)


@contextmanager
def batching(max_batch: int = DEFAULT_MAX_BATCH) -> Iterator[None]:
    """Defer the ``model``/``auto`` calls of every surrogate, from every thread, and answer them in batches.

    See the module docstring for when a queue is computed and what a deferred value is.  A block of
    a surrogate's own (``fn.batching()``) inside this one sets that surrogate's ``max_batch``.  At the
    end every queued call is computed and its outputs written; an error of a call whose value was never
    used is raised then (the first one).
    """
    max_batch = check_max_batch(max_batch)
    with SCOPE.lock:
        SCOPE.blocks.append(max_batch)
    for owner in SCOPE.live():
        owner.refresh_handler()
    ok = False
    try:
        yield
        ok = True
    finally:
        owners = SCOPE.live()
        try:
            for owner in owners:
                owner.batcher.flush_pending()
        finally:
            with SCOPE.lock:
                SCOPE.blocks.remove(max_batch)
            for owner in owners:
                owner.refresh_handler()
        errors = [e for owner in owners for e in owner.batcher.unclaimed_errors()]
        if ok and errors:
            raise errors[0]


# -- calls in hand: fn.batch / fn.map ------------------------------------------------------------


class ColumnCalls:
    """Plain positional calls given as argument columns: call ``i`` is ``tuple(c[i] for c in columns)``."""

    def __init__(self, columns: tuple[np.ndarray, ...]) -> None:
        self.columns = columns

    def __len__(self) -> int:
        return len(self.columns[0])

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        return tuple(c[i] for c in self.columns)


def answer_now(p: Parts, flush: Flush, items: list[Any] | None = None,
               columns: tuple[np.ndarray, ...] | None = None) -> list[Any]:
    """Answer calls the caller has in hand in one batch of the mode's step ``flush``: ``items`` (argument
    tuples, or dicts of keyword arguments), or ``columns`` (one float array per argument of a plain
    positional call, :attr:`CallPlan.float_row`).  Inputs are checked first (a bad one raises before
    anything runs); results in order; the first call's error, if any, is raised after all are answered.
    """
    batch = Batch(p.batcher, p, flush, 0)
    codec = p.codec
    plan = codec.plan
    assert plan is not None
    if columns is not None:
        batch.columns = columns
        batch.calls = ColumnCalls(columns)
    else:
        assert items is not None
        calls = batch.calls
        for c in items:
            args, kwargs = ((), dict(c)) if isinstance(c, dict) else (tuple(c), {})
            if plan.float_row and not kwargs and len(args) == plan.n_in and all(type(a) in FLOAT_TYPES for a in args):
                calls.append(args)
                continue
            frame, X, n, positional = codec.model_inputs(args, kwargs)
            calls.append(Call(args, kwargs, frame, X.copy() if p.batched else X, n, positional))
    n_calls = len(batch.calls)
    if n_calls == 0:
        return []
    p.counters.calls += n_calls
    outcomes = flush(p, batch)
    for outcome in outcomes:
        if type(outcome) is Failure:
            raise outcome.error
    return outcomes
