"""The call codec: a function's calls <-> model rows, through the spec's optics.

It binds a call's arguments (:meth:`CallCodec.frame`), reads the input and
output variables through their optics with every value checked against its
variable, packs model inputs (the spec's input layout: flat rows or ragged
sets), and writes model answers back into the caller's objects and the
return value.  The per-variable plans are resolved once, when the spec is
known (:class:`CallPlan`), and published with one reference assignment, so
a thread never sees half a plan; the one-call (batch 1) paths do no lookups.

Example
-------
>>> from phasm.bindings.spec import Scalar, Spec
>>> def f(x, y):
...     return x * y
>>> codec = CallCodec(f, "m.f", batched=False)
>>> codec.bind(Spec.from_declarations("m.f", {"x": Scalar(), "y": Scalar()}, {"z": Scalar()}))
>>> frame, X, n, positional = codec.model_inputs((2.0, 3.0), {})
>>> X.tolist(), n, positional
([[2.0, 3.0]], 1, True)
>>> codec.put_outputs(frame, np.array([[6.0]], np.float32))
6.0
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import numpy as np

from phasm.bindings.build import finish_frame
from phasm.bindings.layout import FlatLayout, RaggedLayout, input_layout
from phasm.bindings.optics import Arg, CallFrame, Return
from phasm.bindings.spec import Spec, Variable, pack, unpack
from phasm.errors import OpticError, SpecError
from phasm.surrogate.buffers import RowBuffers

__all__ = ["FAST_SCALAR_TYPES", "FLOAT_TYPES", "CallCodec", "CallPlan"]

# Python scalars that store into a scalar variable of a dtype kind without loss: skip the array check.
FAST_SCALAR_TYPES: dict[tuple[tuple[int, ...], str], tuple[type, ...]] = {
    ((), "f"): (float, int), ((), "i"): (int,), ((), "u"): (int,), ((), "b"): (bool,)}

INT64_MIN, UINT64_MAX = -(2**63), 2**64 - 1  # Python ints beyond these fit no number type

# Float arguments a deferred call's row takes in bulk: each is a double rounded once to float32, as packing one call does.
FLOAT_TYPES = frozenset({float, np.float64, np.float32})

Getter = Callable[[CallFrame], Any]
Putter = Callable[..., None]


class CallPlan:
    """Everything a call needs from the spec, resolved once (immutable after construction)."""

    def __init__(self, spec: Spec, params: tuple[str, ...], simple_params: bool, batched: bool) -> None:
        self.spec = spec
        self.in_vars = spec.inputs
        self.out_vars = spec.outputs
        self.n_in = spec.n_in_features
        self.layout: FlatLayout | RaggedLayout = input_layout(spec)
        # Outputs that are items of a returned tuple: how many items the return value has.
        self.n_items = sum(1 for v in self.out_vars if isinstance(v.optic, Return) and isinstance(v.optic.key, int))
        self.in_plan: list[tuple[Getter, tuple[type, ...], Variable, int, int]] = []
        col = 0
        for v in self.in_vars:
            assert v.optic is not None
            self.in_plan.append((v.optic.get, FAST_SCALAR_TYPES.get((v.shape, v.dtype.kind), ()), v, col, v.size))
            col += v.size
        self.out_plan: list[tuple[Putter, Variable, int, int, str]] = []
        col = 0
        for v in self.out_vars:
            assert v.optic is not None
            self.out_plan.append((v.optic.put, v, col, v.size, v.dtype.kind))
            col += v.size
        #: reused float32 model-input matrices, one per batch size and thread (batched calls gather into them)
        self.buffers = RowBuffers(self.n_in)
        #: per input variable, the array dtypes its check accepted already (batched calls skip the check for them)
        self.accepted: list[set[np.dtype[Any]]] = [set() for _ in self.in_vars]
        # Outputs written straight from the model's rows into the caller's array argument (one cast pass,
        # no per-variable intermediate): float variables bound to an argument, in batched calls.
        self.direct_out = [batched and type(v.optic) is Arg and not v.ragged and v.dtype.kind == "f"
                           for v in self.out_vars]
        # The model may write its answers straight into the caller's array: one float32 output, an argument.
        self.bound_out = (batched and len(self.out_vars) == 1 and self.direct_out[0]
                          and self.out_vars[0].dtype == np.float32)
        # One flat row per call, written field by field: the fast path.
        self.row_path = not batched and not self.layout.ragged and not any(v.ragged for v in self.out_vars)
        # Plain positional calls of a function whose inputs are its arguments and whose outputs are its
        # return value need no argument dict at all: inputs are read straight from the args tuple.
        positional = (self.row_path and simple_params
                      and all(type(v.optic) is Arg and v.direction == "in" for v in self.in_vars)
                      and all(type(v.optic) is Return for v in self.out_vars))
        self.positional_plan: list[tuple[int, tuple[type, ...], Variable, int, int]] | None = None
        if positional:
            self.positional_plan = []
            for _, fast, v, c, size in self.in_plan:
                assert isinstance(v.optic, Arg)
                self.positional_plan.append((params.index(v.optic.name), fast, v, c, size))
        # Calls whose arguments are the model's row, in order, all floats (deferred calls gather them in bulk).
        self.float_row = (self.positional_plan is not None and len(self.positional_plan) == len(params)
                          and all(i == c and size == 1 and v.dtype.kind == "f" and not v.shape
                                  for i, _, v, c, size in self.positional_plan))
        # How a call's return value is made of its scalar outputs, to build many at once:
        # ("value", col, kind) | ("tuple", [(col, kind)...]) | ("dict", [(key, col, kind)...]) | None (per call).
        self.result_form: tuple[Any, ...] | None = None
        if positional and all(not v.shape for v in self.out_vars):
            keys = [v.optic.key for v in self.out_vars if isinstance(v.optic, Return)]
            cols = [(c, kind) for _, _, c, _, kind in self.out_plan]
            if keys == [None]:
                self.result_form = ("value", *cols[0])
            elif keys and sorted(k for k in keys if isinstance(k, int)) == list(range(len(keys))):
                self.result_form = ("tuple", [cols[keys.index(i)] for i in range(len(keys))])
            elif keys and all(isinstance(k, str) for k in keys) and len(set(keys)) == len(keys):
                self.result_form = ("dict", [(k, *cols[i]) for i, k in enumerate(keys)])
        # A float row in, one scalar out: the deferred call's hot path.
        self.value_row = self.float_row and self.result_form is not None and self.result_form[0] == "value"


class CallCodec:
    """Reads a function's calls into model rows and writes model answers back (see the module docstring).

    ``plan`` is ``None`` until the spec is known (declared, inferred from the first call, or
    bound from a stored spec by :meth:`bind`).
    """

    def __init__(self, fn: Callable[..., Any], name: str, *, batched: bool) -> None:
        self.name = name
        self.batched = batched
        self.signature = inspect.signature(fn)
        params = list(self.signature.parameters.values())
        self.params = tuple(p.name for p in params)
        self.simple_params = all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        self.plan: CallPlan | None = None

    @property
    def spec(self) -> Spec | None:
        plan = self.plan
        return None if plan is None else plan.spec

    def bind(self, spec: Spec) -> None:
        """Use ``spec`` from now on: check that its optics start from this function's parameters, resolve the plans."""
        for v in spec.variables:
            if v.optic is None:
                raise SpecError(f"{self.name}: variable {v.name!r} is not bound to the call (no optic)")
            root = v.optic.root_argument
            if root is not None and root not in self.params:
                raise SpecError(f"{self.name}: variable {v.name!r} reads argument {root!r}, but the function's "
                                f"parameters are {list(self.params)}")
        self.plan = CallPlan(spec, self.params, self.simple_params, self.batched)  # one assignment: atomic

    def _plan(self) -> CallPlan:
        plan = self.plan
        if plan is None:
            raise SpecError(f"{self.name}: its spec is not known yet (declare inputs=/outputs=, or call it once)")
        return plan

    # -- arguments ------------------------------------------------------------

    def frame(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> CallFrame:
        """The call's arguments by name (defaults applied); a wrong call is the function's own TypeError."""
        if not kwargs and self.simple_params and len(args) == len(self.params):
            return CallFrame(dict(zip(self.params, args)))
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.name}: {exc}") from None
        bound.apply_defaults()
        return CallFrame(dict(bound.arguments))

    def call_args(self, frame: CallFrame) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Positional and keyword arguments to call the original function with ``frame``'s (possibly changed) arguments."""
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for p in self.signature.parameters.values():
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
        return tuple(args), kwargs

    @staticmethod
    def snapshot_arrays(frame: CallFrame) -> dict[str, np.ndarray]:
        """Copies of array arguments, to find in-place writes when inferring the spec."""
        return {k: v.copy() for k, v in frame.args.items() if isinstance(v, np.ndarray)}

    @staticmethod
    def mutated(frame: CallFrame, before: dict[str, np.ndarray]) -> set[str]:
        """Array arguments the call changed in place."""
        return {k for k, old in before.items()
                if not np.array_equal(old, frame.args[k], equal_nan=old.dtype.kind == "f")}

    # -- reading variables ------------------------------------------------------

    def batch_size(self, frame: CallFrame) -> int:
        """The leading axis of a batched call's inputs."""
        for v in self._plan().in_vars:
            assert v.optic is not None
            try:
                value = v.optic.get(frame)
            except OpticError:
                continue
            shape = np.shape(value)
            if not shape:
                raise SpecError(f"{self.name}: input {v.name!r} of a batched function needs a leading batch axis, got a scalar")
            return int(shape[0])
        raise SpecError(f"{self.name}: cannot tell the batch size: no input found")

    def rows_of(self, frame: CallFrame) -> int:
        """Rows the call holds: its batch size, or 1."""
        return self.batch_size(frame) if self.batched else 1

    def read_inputs(self, frame: CallFrame) -> list[Any]:
        """Input values, validated against the spec; inout arrays copied (the call will change them)."""
        return self._read(self._plan().in_vars, frame, "input")

    def read_outputs(self, frame: CallFrame) -> list[Any]:
        """Output values (after the call), validated against the spec; a changed tuple arity is an error."""
        plan = self._plan()
        result = frame.result
        if plan.n_items and type(result) is tuple and len(result) != plan.n_items:
            raise SpecError(
                f"{self.name} returned a tuple of {len(result)} items, but its spec has {plan.n_items} "
                f"({', '.join(str(v.name) for v in plan.out_vars if isinstance(v.optic, Return))}); items are never "
                "dropped or invented: declare outputs= to match, or capture into a new store")
        return self._read(plan.out_vars, frame, "output")

    def inputs_before_call(self, frame: CallFrame, before: dict[str, np.ndarray]) -> list[Any]:
        """Input values of a call whose spec was just inferred from it: ``inout`` ones from the
        snapshot taken before the call, the others read now (validated)."""
        plan = self._plan()
        batch = self.batch_size(frame) if self.batched else None
        values = []
        for v in plan.in_vars:
            assert v.optic is not None
            value = before.get(str(v.optic.root_argument)) if v.direction == "inout" else v.optic.get(frame)
            values.append(v.check_value(value, batch=batch, where=f"{self.name}: input "))
        return values

    def _read(self, variables: Sequence[Variable], frame: CallFrame, what: str, *, batch: int | None = None,
              copy_inout: bool = True) -> list[Any]:
        if batch is None and self.batched:
            batch = self.batch_size(frame)
        values = []
        for v in variables:
            assert v.optic is not None
            try:
                value = v.optic.get(frame)
            except OpticError as exc:
                raise SpecError(f"{self.name}: {what} variable {v.name!r}: {exc}") from None
            fast = batch is None and type(value) in FAST_SCALAR_TYPES.get((v.shape, v.dtype.kind), ())
            if not fast or (type(value) is int and not INT64_MIN <= value <= UINT64_MAX):
                value = v.check_value(value, batch=batch, where=f"{self.name}: {what} ")
                if copy_inout and what == "input" and v.direction == "inout":
                    value = value.copy()
            values.append(value)
        return values

    # -- model inputs -------------------------------------------------------------

    def model_inputs(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[CallFrame, Any, int, bool]:
        """A call's model inputs: ``(frame, X, n, positional)``.  A plain positional call
        (``positional``) gets an empty frame: its inputs are read straight from ``args``."""
        plan = self._plan()
        positional = plan.positional_plan
        if positional is not None and not kwargs and len(args) == len(self.params):
            return CallFrame({}), self._pack_positional(plan, positional, args), 1, True
        frame = self.frame(args, kwargs)
        if plan.row_path:
            return frame, self._pack_row(plan, frame), 1, False
        X, n = self.pack_frame(frame)
        return frame, X, n, False

    def pack_frame(self, frame: CallFrame) -> tuple[Any, int]:
        """Model inputs (the layout's rows) of a call frame, validated; and how many rows."""
        plan = self._plan()
        if plan.layout.ragged:
            return plan.layout.pack_call(self.read_inputs(frame)), 1
        if self.batched:
            return self._gather(plan, frame)
        return self._pack_row(plan, frame), 1

    def _gather(self, plan: CallPlan, frame: CallFrame) -> tuple[np.ndarray, int]:
        """A batched call's model inputs, validated, gathered in one pass into a reused float32 buffer.

        Each input is cast as it is copied into its columns; one input that already is the model's
        rows (C-contiguous float32 ``(n, n_in)``) is handed over as it lies, without a copy.  A numpy
        array of the batch's shape and of a dtype already accepted for its variable skips
        :meth:`Variable.check_value` (same checks, their outcome remembered per dtype).
        """
        n = -1
        values = []
        v: Variable | None = None
        try:
            for (get, _, v, _, _), accepted in zip(plan.in_plan, plan.accepted):
                value = get(frame)
                if n < 0:
                    shape = np.shape(value)
                    if not shape:
                        raise SpecError(f"{self.name}: input {v.name!r} of a batched function needs a leading batch "
                                        "axis, got a scalar")
                    n = int(shape[0])
                if not (type(value) is np.ndarray and value.dtype in accepted and value.shape == (n, *v.shape)):
                    value = v.check_value(value, batch=n, where=f"{self.name}: input ")
                    accepted.add(value.dtype)
                values.append(value)
        except OpticError as exc:
            raise SpecError(f"{self.name}: input variable {v.name if v else '?'!r}: {exc}") from None
        if len(values) == 1:
            only = values[0]
            if only.dtype == np.float32 and only.flags.c_contiguous:
                return only.reshape(n, plan.n_in), n
        X = plan.buffers.get(n)
        for (_, _, _, col, size), value in zip(plan.in_plan, values):
            if size == 1:
                X[:, col] = value.reshape(n)
            else:
                X[:, col : col + size] = value.reshape(n, size)
        return X, n

    def _pack_row(self, plan: CallPlan, frame: CallFrame) -> np.ndarray:
        """One call's model input row ``(1, n_in)``, validated, in one pass over the inputs."""
        x = np.empty((1, plan.n_in), np.float32)
        row = x[0]
        v: Variable | None = None
        value: Any = None
        try:
            for get, fast, v, col, size in plan.in_plan:
                value = get(frame)
                if type(value) in fast:
                    row[col] = value
                    continue
                value = v.check_value(value, where=f"{self.name}: input ")
                if size == 1:
                    row[col] = value
                else:
                    row[col : col + size] = value.reshape(-1)
        except OpticError as exc:
            raise SpecError(f"{self.name}: input variable {v.name if v else '?'!r}: {exc}") from None
        except OverflowError:
            assert v is not None
            raise self._overflow(v, value) from None
        return x

    def _pack_positional(self, plan: CallPlan, positional: list[tuple[int, tuple[type, ...], Variable, int, int]],
                         args: tuple[Any, ...]) -> np.ndarray:
        """:meth:`_pack_row` for plain positional calls: inputs read from ``args`` by position."""
        x = np.empty((1, plan.n_in), np.float32)
        row = x[0]
        v: Variable | None = None
        value: Any = None
        try:
            for i, fast, v, col, size in positional:
                value = args[i]
                if type(value) in fast:
                    row[col] = value
                    continue
                value = v.check_value(value, where=f"{self.name}: input ")
                if size == 1:
                    row[col] = value
                else:
                    row[col : col + size] = value.reshape(-1)
        except OverflowError:
            assert v is not None
            raise self._overflow(v, value) from None
        return x

    def _overflow(self, v: Variable, value: Any) -> SpecError:
        """The one-line error for a number too large for the model's float32 inputs."""
        v.check_value(value, where=f"{self.name}: input ")  # the variable's own dtype refuses it first, if it does
        return SpecError(f"{self.name}: input variable {v.name!r}: {_short(value)} does not fit the model's "
                         "float32 inputs")

    # -- model answers --------------------------------------------------------------

    def put_outputs(self, frame: CallFrame, Y: np.ndarray) -> Any:
        """Write model rows back through the output optics; returns the built return value.

        A float output bound to an array argument of its dtype and shape (batched calls) is written
        from ``Y`` straight into that array, cast as it is copied; nothing is copied when the model
        already wrote it there (:meth:`bound_output`).
        """
        plan = self._plan()
        if plan.row_path:
            return self._put_row(plan, frame, Y)
        for (_, v, col, size, _), direct in zip(plan.out_plan, plan.direct_out):
            block = Y[:, col : col + size]
            if direct and self._write_direct(frame, v, block):
                continue
            assert v.optic is not None
            value: Any = unpack((v,), block)[str(v.name)]
            if not self.batched:
                value = value[0]
                if not v.shape:
                    value = value.item()
            v.optic.put(frame, value, n_items=plan.n_items)
        return finish_frame(frame)  # builds a return value that output optics filled field by field

    @staticmethod
    def _write_direct(frame: CallFrame, v: Variable, block: np.ndarray) -> bool:
        """Write model columns ``block`` into the array argument ``v`` is bound to, if it is a numpy array
        of ``v``'s dtype and the batch's shape (``False``: not such an array; the optic writes it)."""
        assert isinstance(v.optic, Arg)
        target = frame.args.get(v.optic.name)
        if type(target) is not np.ndarray or target.dtype != v.dtype or target.shape != (len(block), *v.shape):
            return False
        src = block.reshape(target.shape)
        if src.ctypes.data != target.ctypes.data or src.strides != target.strides:  # not already there
            target[...] = src
        return True

    def bound_output(self, frame: CallFrame, X: np.ndarray, n: int) -> np.ndarray | None:
        """The caller's array the model may write its answers into, as ``(n, n_out)``: the function's one
        output, a float32 C-contiguous array argument of the batch's shape that ``X`` does not overlap.
        ``None`` otherwise (the answers are written back by :meth:`put_outputs`)."""
        plan = self._plan()
        if not plan.bound_out:
            return None
        v = plan.out_vars[0]
        assert isinstance(v.optic, Arg)
        target = frame.args.get(v.optic.name)
        if (type(target) is not np.ndarray or target.dtype != np.float32 or not target.flags.c_contiguous
                or not target.flags.writeable or target.shape != (n, *v.shape) or np.may_share_memory(target, X)):
            return None
        return target.reshape(n, plan.spec.n_out_features)

    def _put_row(self, plan: CallPlan, frame: CallFrame, Y: np.ndarray) -> Any:
        """One call's outputs from row ``Y[0]``: Python scalars for scalar variables, arrays of the
        declared dtype otherwise (integers and booleans rounded, as :func:`unpack` does)."""
        row = Y[0]
        n_items = plan.n_items
        for put, v, col, size, kind in plan.out_plan:
            value: Any
            if not v.shape:
                value = row[col].item()
                if kind in "iub":
                    value = round(value) if kind != "b" else bool(round(value))
            else:
                block = row[col : col + size].reshape(v.shape)
                value = (np.rint(block) if kind in "iub" else block).astype(v.dtype)
            put(frame, value, n_items=n_items)
        return finish_frame(frame)

    @staticmethod
    def own_rows(Y: np.ndarray, X: Any) -> np.ndarray:
        """``Y``, copied if it shares memory with the model inputs ``X`` (a reused buffer or the caller's
        array): answers handed to the caller never alias the inputs."""
        if type(X) is np.ndarray and np.may_share_memory(Y, X):
            return Y.copy()
        return Y

    def pack_outputs(self, outs: Sequence[Any], n: int, dtype: Any = np.float32) -> np.ndarray:
        """Output values (spec order, as :meth:`read_outputs` gives them) as model rows ``(n, n_out)``."""
        plan = self._plan()
        return pack(plan.out_vars, dict(zip((str(v.name) for v in plan.out_vars), outs)), n, dtype)

    def merge_exact(self, frame: CallFrame, Y: np.ndarray, rows: np.ndarray, outs: Sequence[Any]) -> Any:
        """Write a batch back with rows ``rows`` taken from the original's exact answers ``outs``."""
        plan = self._plan()
        values = unpack(plan.out_vars, Y)
        for v, exact in zip(plan.out_vars, outs):
            assert v.optic is not None
            merged = values[str(v.name)].astype(v.dtype)
            merged[rows] = exact
            v.optic.put(frame, merged, n_items=plan.n_items)
        return finish_frame(frame)


def _short(value: Any) -> str:
    """A number for a one-line message: huge integers by their size, not their 300 digits."""
    if isinstance(value, int) and abs(value) > 10**15:
        return f"the integer {'-' if value < 0 else ''}2**{abs(value).bit_length() - 1}..."
    return repr(value)
