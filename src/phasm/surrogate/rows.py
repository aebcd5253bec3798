"""Reading a call's variables through their optics and writing model answers back
(a mixin of :class:`~phasm.surrogate.Surrogate`).

The one-call (batch 1) path packs inputs into a model row and unpacks the
answer in a single pass over per-variable plans resolved when the spec is set;
plain positional calls are read straight from the argument tuple.  Every value
is checked against its variable (shape, dtype, numeric) with an error naming it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from phasm.bindings.build import finish_frame
from phasm.bindings.optics import CallFrame, OpticError
from phasm.bindings.spec import SpecError, pack, unpack

# Python scalars that store into a scalar variable of a dtype kind without loss: skip the array check.
FAST_SCALAR_TYPES = {((), "f"): (float, int), ((), "i"): (int,), ((), "u"): (int,), ((), "b"): (bool,)}


class RowBinding:
    """Inputs in, answers out, for one call or a batch (mixed into ``Surrogate``)."""

    def _model_inputs(self, args: tuple, kwargs: dict) -> tuple[CallFrame, Any, int, bool]:
        """A call's model input rows: ``(frame, X, n, positional)``.  A plain positional call
        (``positional``) gets an empty frame: its inputs are read straight from ``args``."""
        if self._positional_plan is not None and not kwargs and len(args) == len(self._param_names):
            return CallFrame(None), self._pack_positional(args), 1, True  # type: ignore[arg-type]
        frame = self._frame(args, kwargs)
        X, n = (self._pack_row(frame), 1) if self._row_path else self._pack_frame(frame)
        return frame, X, n, False

    def _read_inputs(self, frame: CallFrame) -> list[Any]:
        """Input values, validated against the spec; inout arrays copied (the call will change them)."""
        return self._read(self._in_vars, frame, "input")

    def _read_outputs(self, frame: CallFrame) -> list[Any]:
        """Output values (after the call), validated against the spec."""
        return self._read(self._out_vars, frame, "output")

    def _read(self, variables: Any, frame: CallFrame, what: str) -> list[Any]:
        batch = self._batch_size(frame) if self.batched else None
        values = []
        for v in variables:
            try:
                value = v.optic.get(frame)  # type: ignore[union-attr]
            except OpticError as exc:
                raise SpecError(f"{self.name}: {what} variable {v.name!r}: {exc}") from None
            if not (batch is None and type(value) in FAST_SCALAR_TYPES.get((v.shape, v.dtype.kind), ())):
                value = v.check_value(value, batch=batch, where=f"{self.name}: {what} ")
                if what == "input" and v.direction == "inout":
                    value = value.copy()
            values.append(value)
        return values

    def _batch_size(self, frame: CallFrame) -> int:
        for v in self._in_vars:
            try:
                value = v.optic.get(frame)  # type: ignore[union-attr]
            except OpticError:
                continue
            shape = np.shape(value)
            if not shape:
                raise SpecError(f"{self.name}: input {v.name!r} of a batched function needs a leading batch axis, got a scalar")
            return int(shape[0])
        raise SpecError(f"{self.name}: cannot tell the batch size: no input found")

    def _pack_frame(self, frame: CallFrame) -> tuple[np.ndarray, int]:
        """Model input rows ``(n, n_in)`` from a call frame (validated)."""
        if self._ragged:
            return self._layout.pack_call(self._read_inputs(frame)), 1
        if self.batched:
            n = self._batch_size(frame)
            values = dict(zip((v.name for v in self._in_vars), self._read_inputs(frame)))
            return pack(self._in_vars, values, n), n
        return self._pack_row(frame), 1

    def _pack_row(self, frame: CallFrame) -> np.ndarray:
        """One call's model input row ``(1, n_in)``, validated, in one pass over the inputs."""
        x = np.empty((1, self._n_in), np.float32)
        row = x[0]
        v = None
        try:
            for get, fast, v, col, size in self._in_plan:
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
            raise SpecError(f"{self.name}: input variable {v.name!r}: {exc}") from None  # type: ignore[union-attr]
        return x

    def _put_outputs(self, frame: CallFrame, Y: np.ndarray) -> Any:
        """Write model rows back through the output optics; returns the built return value."""
        if self._row_path:
            return self._put_row(frame, Y)
        values = unpack(self._out_vars, Y)
        for v in self._out_vars:
            value = values[v.name]  # type: ignore[index]
            if not self.batched:
                value = value[0]
                if not v.shape:
                    value = value.item()
            v.optic.put(frame, value, n_items=self._n_items)  # type: ignore[union-attr]
        return finish_frame(frame)  # builds a return value that output optics filled field by field

    def _pack_positional(self, args: tuple) -> np.ndarray:
        """:meth:`_pack_row` for plain positional calls: inputs read from ``args`` by position."""
        x = np.empty((1, self._n_in), np.float32)
        row = x[0]
        for i, fast, v, col, size in self._positional_plan:  # type: ignore[union-attr]
            value = args[i]
            if type(value) in fast:
                row[col] = value
                continue
            value = v.check_value(value, where=f"{self.name}: input ")
            if size == 1:
                row[col] = value
            else:
                row[col : col + size] = value.reshape(-1)
        return x

    def _put_row(self, frame: CallFrame, Y: np.ndarray) -> Any:
        """One call's outputs from row ``Y[0]``: Python scalars for scalar variables, arrays of the
        declared dtype otherwise (integers and booleans rounded, as :func:`unpack` does)."""
        row = Y[0]
        n_items = self._n_items
        for put, v, col, size, kind in self._out_plan:
            if not v.shape:
                value = row[col].item()
                if kind in "iub":
                    value = round(value) if kind != "b" else bool(round(value))
            else:
                block = row[col : col + size].reshape(v.shape)
                value = (np.rint(block) if kind in "iub" else block).astype(v.dtype)
            put(frame, value, n_items=n_items)
        return finish_frame(frame)
