"""``auto`` mode: the model answers the rows its trust gate accepts, the original the rest
(a mixin of :class:`~phasm.surrogate.Surrogate`).

Per call (or batch), trusted rows come from the model; rejected rows go to the
original function — as one batched call for a batched function — and are
captured for the next training round.  NaN/inf inputs or answers are never
trusted; a gate or model that raises trusts nothing.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from phasm.bindings.build import finish_frame
from phasm.bindings.optics import CallFrame
from phasm.bindings.spec import pack, unpack
from phasm.gate.base import FiniteGate, Gate, finite_rows


class AutoMode:
    """The ``auto`` call path (mixed into ``Surrogate``)."""

    def _call_auto(self, args: tuple, kwargs: dict) -> Any:
        model, gate = self._live  # one read: a concurrent hot swap cannot split the pair
        if model is None or self.spec is None:
            # No model yet: behave like capture, so the data for one accrues.
            self._n_fallbacks += self._batch_size(self._frame(args, kwargs)) if (self.batched and self.spec) else 1
            return self._call_capture(args, kwargs)
        frame, X, n, positional = self._model_inputs(args, kwargs)
        t0 = time.perf_counter()
        Y, trusted = self._gated_predict(model, gate, X, n)
        self._t_model += time.perf_counter() - t0
        if not self.batched and trusted is True:  # one call, trusted: the latency-critical path
            self._n_model_rows += 1
            self._n_rows += 1
            self._n_model += 1
            if self.shadow_fraction > 0:
                self._maybe_shadow(self._frame(args, kwargs) if positional else frame, X, Y, n)
            return self._put_outputs(frame, Y)
        trusted = np.asarray(trusted, bool).reshape(n)
        n_trusted = int(trusted.sum())
        self._n_model_rows += n_trusted
        self._n_rows += n
        shadow = None
        if self.batched and self.shadow_fraction > 0 and n_trusted:
            # Shadow-check single rows, not whole batches: a batch answered whole is an easy one.
            shadow = trusted & (self._rng.random(n) < self.shadow_fraction)
            shadow = shadow if shadow.any() else None
        if n_trusted == n:
            self._n_model += 1
            if shadow is not None:
                return self._auto_batched_fallback(frame, X, Y, trusted, shadow)
            return self._put_outputs(frame, Y)
        self._n_fallbacks += n - n_trusted
        if self.retrain_after_rows:
            self._maybe_retrain()
        if not self.batched:
            # One call: the original answers it whole, and the row is captured.
            if positional:
                frame = self._frame(args, kwargs)
            ins = self._read_inputs(frame)
            frame.result = self._call_original(args, kwargs)
            self._record(self.spec, frame, ins)
            return frame.result
        return self._auto_batched_fallback(frame, X, Y, trusted, shadow)

    def _gated_predict(self, model: Any, gate: Gate, X: np.ndarray, n: int) -> tuple[np.ndarray, Any]:
        """Model answers and the rows the gate trusts: a bool for one finite row, else a mask.

        Non-finite inputs or answers are never trusted, whatever the gate says; a gate or model
        that raises trusts nothing.
        """
        try:
            if type(gate) is FiniteGate:  # the finite check below is the whole of this gate
                Y = model.predict(X)
                trusted: Any = True
            elif hasattr(gate, "predict_accept"):  # ensemble members evaluated once for answer and score
                Y, trusted = gate.predict_accept(X, model)
            else:
                Y = model.predict(X)
                trusted = gate.accept(X, Y, model)
        except Exception:
            return np.full((n, self.spec.n_out_features), np.nan, np.float32), np.zeros(n, bool)  # type: ignore[union-attr]
        if n == 1:
            ok = ((trusted is True or bool(np.asarray(trusted).all()))
                  and bool(np.isfinite(X).all() if not self._ragged else self._layout.finite_rows(X).all())
                  and bool(np.isfinite(Y).all()))
            return Y, (True if ok else np.zeros(1, bool))
        mask = np.ones(n, bool) if trusted is True else np.asarray(trusted, bool).reshape(n)
        return Y, mask & self._layout.finite_rows(X) & finite_rows(Y)

    def _auto_batched_fallback(self, frame: CallFrame, X: np.ndarray, Y: np.ndarray, trusted: np.ndarray,
                               shadow: np.ndarray | None = None) -> Any:
        """Rejected rows (and rows picked for a shadow check) go to the original as one batched call;
        results merge row by row, and shadow rows' model answers are scored against the original's."""
        rejected = np.flatnonzero(~trusted if shadow is None else (~trusted | shadow))
        sub = CallFrame(dict(frame.args))
        n = len(trusted)
        for name, value in frame.args.items():
            if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == n:
                sub.args[name] = value[rejected]  # a copy: inout writes land here first
        ins = self._read_inputs(sub)
        sub.result = self._call_frame(sub)
        outs = self._read_outputs(sub)
        if shadow is not None:
            exact = pack(self._out_vars, dict(zip((v.name for v in self._out_vars), outs)), len(rejected), np.float64)
            checked = shadow[rejected]
            self._record_shadow(Y[rejected][checked], exact[checked])
        Y = Y.copy()
        Y[rejected] = pack(self._out_vars, dict(zip((v.name for v in self._out_vars), outs)), len(rejected), Y.dtype)
        writer = self._writer_for(self.spec)  # type: ignore[arg-type]
        if writer is not None:
            writer.append_batch(ins, outs)
            self._n_captured += len(rejected)
        if Y.dtype != np.float64 and any(v.dtype == np.float64 for v in self._out_vars):
            # Keep the original's exact float64 answers for rejected rows.
            return self._merge_exact(frame, Y, rejected, outs)
        return self._put_outputs(frame, Y)

    def _merge_exact(self, frame: CallFrame, Y: np.ndarray, rejected: np.ndarray, outs: list[np.ndarray]) -> Any:
        values = unpack(self._out_vars, Y)
        for v, exact in zip(self._out_vars, outs):
            merged = values[v.name].astype(v.dtype)  # type: ignore[index]
            merged[rejected] = exact
            v.optic.put(frame, merged, n_items=self._n_items)  # type: ignore[union-attr]
        return finish_frame(frame)
