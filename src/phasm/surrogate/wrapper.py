"""The surrogate wrapper: binds a callable, dispatches each call on the mode.

Example
-------
>>> import phasm
>>> @phasm.surrogate(store="captures/price.h5")       # doctest: +SKIP
... def price(S: float, K: float, r: float, v: float, T: float) -> float: ...
>>> price.mode = "capture"                             # doctest: +SKIP
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
import time
import types
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from phasm.bindings.infer import bind_by_signature, infer_spec, needs_inference, resolve_inferred
from phasm.bindings.optics import Arg, CallFrame, Return
from phasm.bindings.layout import input_layout
from phasm.bindings.spec import Spec, SpecError, Variable
from phasm.gate.base import FiniteGate, Gate
from phasm.gate.tolerance import Tolerance
from phasm.store.reader import RunningStats
from phasm.store.writer import CaptureWriter
from phasm.surrogate.auto import AutoMode
from phasm.surrogate.lifecycle import ModelLifecycle, ModelNotLoaded
from phasm.surrogate.mode import Mode, mode_from_env, parse_mode
from phasm.surrogate.observe import CallObservation
from phasm.surrogate.rows import FAST_SCALAR_TYPES, RowBinding

_UNRESOLVED = object()


class Surrogate(RowBinding, AutoMode, ModelLifecycle, CallObservation):
    """A function that may be answered by a trained model. See :func:`surrogate`."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        inputs: Mapping[str, Variable] | None = None,
        outputs: Mapping[str, Variable] | None = None,
        store: str | os.PathLike[str] | None = None,
        batched: bool = False,
        mode: Mode | str | None = None,
        model: str | os.PathLike[str] | None = None,
        backend: str = "torch",
        tolerance: Tolerance | None = None,
        gate: Gate | None = None,
        flush_rows: int = 1024,
        shadow_fraction: float = 0.0,
    ) -> None:
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]
        self._fn = fn
        self.name = name or f"{fn.__module__}.{fn.__qualname__}"
        self.batched = bool(batched)
        self.store_path = Path(store) if store is not None else None
        self.backend = backend
        self.tolerance = tolerance
        self.flush_rows = flush_rows
        self.shadow_fraction = float(shadow_fraction)
        self._signature = inspect.signature(fn)
        params = list(self._signature.parameters.values())
        self._simple_params = all(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params
        )
        self._param_names = tuple(p.name for p in params)
        self._declared = inputs is not None or outputs is not None
        self.spec: Spec | None = None
        self._deferred: Spec | None = None  # declarations with shapes/dtypes left to the first call
        if self._declared:
            self._set_spec(Spec.from_declarations(self.name, inputs, outputs, batched=self.batched))
            if needs_inference(self.spec):  # type: ignore[arg-type]
                self._deferred, self.spec = self.spec, None
        self._explicit_mode: Mode | None = parse_mode(mode, source="surrogate(mode=)") if mode is not None else None
        self._active_mode: Any = self._explicit_mode if self._explicit_mode is not None else _UNRESOLVED
        self._writer: CaptureWriter | None = None
        # (model, gate) swapped as ONE reference, so a call never pairs a new model with an old gate.
        self._live: tuple[Any, Gate] = (None, gate or FiniteGate())
        self._retrain_lock = threading.Lock()
        self._retrain_thread: threading.Thread | None = None
        self.retrain_after_rows: int | None = None
        self.retrain_in_process = False
        self.calibration: Any = None
        self._captured_at_train = 0
        self._n_retrains = 0
        self.retrain_error: BaseException | None = None
        self._user_gate = gate is not None
        self._summary: dict[str, RunningStats] = {}
        self._rng = np.random.default_rng(0)
        self._reset_counters()
        if model is not None:
            self.load(model)

    # -- model and gate (one atomic pair) ------------------------------------

    @property
    def model(self) -> Any:
        """The attached model artefact (``None`` until trained or loaded)."""
        return self._live[0]

    @model.setter
    def model(self, art: Any) -> None:
        self._live = (art, self._live[1])

    @property
    def gate(self) -> Gate:
        """The trust gate used in ``auto`` mode."""
        return self._live[1]

    @gate.setter
    def gate(self, gate: Gate) -> None:
        self._live = (self._live[0], gate)

    # -- mode -------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        """The active call mode. Set it to a :class:`Mode` or its name; ``None`` re-reads the environment."""
        if self._active_mode is _UNRESOLVED:
            self._active_mode = mode_from_env(self.name)
        return self._active_mode

    @mode.setter
    def mode(self, value: Mode | str | None) -> None:
        if value is None:
            self._explicit_mode = None
            self._active_mode = _UNRESOLVED
        else:
            self._explicit_mode = parse_mode(value, source=f"{self.name}.mode")
            self._active_mode = self._explicit_mode

    # -- calling ----------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        mode = self._active_mode
        if mode is Mode.ORIGINAL:
            self._n_calls += 1
            return self._fn(*args, **kwargs)
        if mode is Mode.MODEL:  # the latency-critical paths: no dispatch hop
            self._n_calls += 1
            return self._call_model(args, kwargs)
        if mode is Mode.AUTO:
            self._n_calls += 1
            return self._call_auto(args, kwargs)
        return self._dispatch(args, kwargs)

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        # Decorating a method: bind like a function does.
        return self if instance is None else types.MethodType(self, instance)

    def _dispatch(self, args: tuple, kwargs: dict) -> Any:
        mode = self.mode
        self._n_calls += 1
        if mode is Mode.ORIGINAL:
            return self._fn(*args, **kwargs)
        if mode is Mode.CAPTURE:
            return self._call_capture(args, kwargs)
        if mode is Mode.MODEL:
            return self._call_model(args, kwargs)
        if mode is Mode.AUTO:
            return self._call_auto(args, kwargs)
        if mode is Mode.SHADOW:
            return self._call_shadow(args, kwargs)
        return self._call_summarize(args, kwargs)

    def _frame(self, args: tuple, kwargs: dict) -> CallFrame:
        if not kwargs and self._simple_params and len(args) == len(self._param_names):
            return CallFrame(dict(zip(self._param_names, args)))
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.name}: {exc}") from None
        bound.apply_defaults()
        return CallFrame(dict(bound.arguments))

    def _call_original(self, args: tuple, kwargs: dict) -> Any:
        t0 = time.perf_counter()
        try:
            return self._fn(*args, **kwargs)
        finally:
            self._t_original += time.perf_counter() - t0
            self._n_original += 1

    def _call_frame(self, frame: CallFrame) -> Any:
        """Call the original function with (possibly modified) frame arguments."""
        args, kwargs = [], {}
        for p in self._signature.parameters.values():
            if p.name not in frame.args:
                continue
            value = frame.args[p.name]
            if p.kind is p.VAR_POSITIONAL:
                args.extend(value)
            elif p.kind is p.VAR_KEYWORD:
                kwargs.update(value)
            elif p.kind is p.KEYWORD_ONLY:
                kwargs[p.name] = value
            else:
                args.append(value)
        return self._call_original(tuple(args), kwargs)

    # -- spec -------------------------------------------------------------

    def _set_spec(self, spec: Spec) -> None:
        for v in spec.variables:
            root = v.optic.root_argument if v.optic is not None else None
            if root is not None and root not in self._param_names:
                raise SpecError(
                    f"{self.name}: variable {v.name!r} reads argument {root!r}, but the function's parameters are "
                    f"{list(self._param_names)}"
                )
        self.spec = spec
        self._in_vars = spec.inputs
        self._out_vars = spec.outputs
        self._n_items = sum(1 for v in self._out_vars if isinstance(v.optic, Return) and isinstance(v.optic.key, int))
        self._inout_args = [v.optic.root_argument for v in spec.variables if v.direction == "inout"]
        self._in_cols = []
        col = 0
        for v in self._in_vars:
            self._in_cols.append((col, v.size))
            col += v.size
        self._layout = input_layout(spec)
        self._ragged = self._layout.ragged  # variable-length inputs: models take RaggedInputs
        self._n_in = spec.n_in_features
        # Per-variable plans for the one-call (batch 1) path, resolved once: the hot loop does no lookups.
        self._in_plan = [(v.optic.get, FAST_SCALAR_TYPES.get((v.shape, v.dtype.kind), ()), v, c, size)  # type: ignore[union-attr]
                         for v, (c, size) in zip(self._in_vars, self._in_cols)]
        out_plan, col = [], 0
        for v in self._out_vars:
            out_plan.append((v.optic.put, v, col, v.size, v.dtype.kind))  # type: ignore[union-attr]
            col += v.size
        self._out_plan = out_plan
        self._row_path = not self.batched and not self._ragged and all(not v.ragged for v in self._out_vars)
        # Plain positional calls of a function whose inputs are its arguments and whose outputs are its
        # return value need no argument dict at all: inputs are read straight from the args tuple.
        positional = (self._row_path and self._simple_params
                      and all(type(v.optic) is Arg and v.direction == "in" for v in self._in_vars)
                      and all(type(v.optic) is Return for v in self._out_vars))
        self._positional_plan = ([(self._param_names.index(v.optic.name), fast, v, c, size)  # type: ignore[union-attr]
                                  for (_, fast, v, c, size) in self._in_plan] if positional else None)

    def _ensure_spec(self, frame: CallFrame, mutated: set[str]) -> Spec:
        if self.spec is None:
            if self._deferred is not None:
                self._set_spec(resolve_inferred(self._deferred, frame=frame))
            else:
                self._set_spec(infer_spec(self.name, frame, mutated=mutated, batched=self.batched))
        return self.spec  # type: ignore[return-value]

    def _resolved_from(self, stored: Spec, what: str = "a stored spec") -> Spec:
        """This function's spec for a spec read from a store or model: declared optics with the stored
        shapes, or the stored variables bound by the function's signature (never optics from the file)."""
        if self._deferred is None:
            return bind_by_signature(stored, self._param_names, function=self.name, batched=self.batched, what=what)
        spec = resolve_inferred(self._deferred, template=stored)
        stored.check_compatible(spec, f"the declarations of {self.name}")
        return spec

    def _snapshot_arrays(self, frame: CallFrame) -> dict[str, np.ndarray]:
        """Copies of array arguments, to find in-place writes when inferring the spec."""
        return {k: v.copy() for k, v in frame.args.items() if isinstance(v, np.ndarray)}

    @staticmethod
    def _mutated(frame: CallFrame, before: dict[str, np.ndarray]) -> set[str]:
        return {k for k, old in before.items() if not np.array_equal(old, frame.args[k], equal_nan=old.dtype.kind == "f")}

    # -- capture ----------------------------------------------------------

    def _writer_for(self, spec: Spec) -> CaptureWriter | None:
        if self.store_path is None:
            return None
        if self._writer is None:
            self._writer = CaptureWriter(self.store_path, spec, flush_rows=self.flush_rows)
        return self._writer

    def _call_capture(self, args: tuple, kwargs: dict) -> Any:
        frame = self._frame(args, kwargs)
        if self.spec is None:
            before = self._snapshot_arrays(frame)
            result = self._call_original(args, kwargs)
            frame.result = result
            spec = self._ensure_spec(frame, self._mutated(frame, before))
            ins = [before.get(v.optic.root_argument, None) if v.direction == "inout" else v.optic.get(frame)  # type: ignore[union-attr]
                   for v in self._in_vars]
            ins = [v.check_value(x, batch=self._batch_size(frame) if self.batched else None) for v, x in zip(self._in_vars, ins)]
        else:
            spec = self.spec
            ins = self._read_inputs(frame)
            result = self._call_original(args, kwargs)
            frame.result = result
        self._record(spec, frame, ins)
        return result

    def _record(self, spec: Spec, frame: CallFrame, ins: list[Any]) -> None:
        outs = self._read_outputs(frame)
        writer = self._writer_for(spec)
        n = self._batch_size(frame) if self.batched else 1
        self._n_rows += n
        if writer is None:
            return
        if self.batched:
            writer.append_batch(ins, outs)
        else:
            writer.append_row(ins, outs)
        self._n_captured += n

    # -- model ------------------------------------------------------------

    def _require_model(self) -> Any:
        if self.model is None:
            raise ModelNotLoaded(
                f"{self.name}: mode 'model' needs a trained model; call .train() or .load(path) first"
            )
        return self.model

    def _predict(self, X: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        try:
            return self._require_model().predict(X)
        finally:
            self._t_model += time.perf_counter() - t0

    def _call_model(self, args: tuple, kwargs: dict) -> Any:
        model = self._live[0]
        if model is None or self.spec is None:
            model = self._require_model()
        frame, X, n, _ = self._model_inputs(args, kwargs)
        t0 = time.perf_counter()
        Y = model.predict(X)
        self._t_model += time.perf_counter() - t0
        self._n_model += 1
        self._n_model_rows += n
        self._n_rows += n
        return self._put_outputs(frame, Y)

    def __repr__(self) -> str:
        return f"<phasm.Surrogate {self.name} mode={self.mode.value} model={'yes' if self.model else 'no'}>"


def surrogate(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    inputs: Mapping[str, Variable] | None = None,
    outputs: Mapping[str, Variable] | None = None,
    store: str | os.PathLike[str] | None = None,
    batched: bool = False,
    mode: Mode | str | None = None,
    model: str | os.PathLike[str] | None = None,
    backend: str = "torch",
    tolerance: Tolerance | None = None,
    gate: Gate | None = None,
    flush_rows: int = 1024,
    shadow_fraction: float = 0.0,
) -> Any:
    """Wrap a function so a trained model may answer its calls.

    Nothing changes until a mode says so (``fn.mode``, ``PHASM_CALL_MODE``).

    Parameters
    ----------
    name: defaults to ``module.qualname``; also names ``PHASM_CALL_MODE_<NAME>``.
    inputs, outputs: explicit declarations (``phasm.Scalar()``, ``phasm.Array(shape)``);
        without them the spec is inferred from the first call.
    store: HDF5 capture store path.
    batched: the function is vectorised: every input and output has a leading batch axis.
    model: a model artefact folder to load now.
    backend: the default backend for :meth:`Surrogate.train`.
    tolerance: the error tolerance (see :class:`phasm.Tolerance`).
    gate: a trust gate; default: the one stored with the model, else finite-only.
    shadow_fraction: share of model-answered calls in ``auto`` mode also run on the original
        to measure the miss rate in production.

    Example
    -------
    >>> import phasm
    >>> @phasm.surrogate(mode="original")
    ... def f(x: float) -> float:
    ...     return 2 * x
    >>> f(3.0)
    6.0
    """
    kwargs = dict(name=name, inputs=inputs, outputs=outputs, store=store, batched=batched, mode=mode,
                  model=model, backend=backend, tolerance=tolerance, gate=gate, flush_rows=flush_rows,
                  shadow_fraction=shadow_fraction)
    if fn is None:
        return lambda f: Surrogate(f, **kwargs)  # type: ignore[arg-type]
    return Surrogate(fn, **kwargs)  # type: ignore[arg-type]
