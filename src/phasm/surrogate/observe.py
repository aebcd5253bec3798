"""Shadow checks, input summaries and counters of a surrogate (a mixin of :class:`~phasm.surrogate.Surrogate`).

``shadow`` mode runs both the model and the original and records the model's
error; ``summarize`` mode records per-variable ranges and moments; ``stats``
snapshots the counters every mode keeps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from phasm.bindings.optics import CallFrame
from phasm.bindings.spec import pack
from phasm.gate.tolerance import Tolerance
from phasm.store.reader import RunningStats
from phasm.surrogate.stats import SurrogateStats


class CallObservation:
    """Shadow mode, summarize mode and the counters (mixed into ``Surrogate``)."""

    def _maybe_shadow(self, frame: CallFrame, X: np.ndarray, Y: np.ndarray, n: int) -> None:
        if self.shadow_fraction <= 0 or self._rng.random() >= self.shadow_fraction:
            return
        if any(v.direction == "inout" for v in self._in_vars):
            return  # the original would overwrite the caller's array; shadow mode handles inout
        check = CallFrame(dict(frame.args))
        check.result = self._call_frame(check)
        outs = self._read_outputs(check)
        self._record_shadow(Y, pack(self._out_vars, dict(zip((v.name for v in self._out_vars), outs)), n, np.float64))

    def _call_shadow(self, args: tuple, kwargs: dict) -> Any:
        frame = self._frame(args, kwargs)
        if self.spec is None or self.model is None:
            return self._call_capture(args, kwargs)
        X, n = self._pack_frame(frame)
        ins = self._read_inputs(frame)
        Y = self._predict(X)
        result = self._call_original(args, kwargs)
        frame.result = result
        outs = self._read_outputs(frame)
        Y_true = pack(self._out_vars, dict(zip((v.name for v in self._out_vars), outs)), n, np.float64)
        self._record_shadow(Y, Y_true)
        self._n_rows += n
        writer = self._writer_for(self.spec)
        if writer is not None:
            (writer.append_batch if self.batched else writer.append_row)(ins, outs)
            self._n_captured += n
        return result

    def _record_shadow(self, Y_pred: np.ndarray, Y_true: np.ndarray) -> None:
        spec = self.spec
        assert spec is not None
        tol = self.tolerance or Tolerance(rel=0.01)
        errors = tol.variable_errors(spec, Y_true, Y_pred)
        self._shadow_rows += len(Y_true)
        if self.tolerance is not None:
            self._shadow_misses += int(tol.misses(spec, Y_true, Y_pred).sum())
        for name, (rel, mabs) in errors.items():
            acc = self._shadow_err.setdefault(name, {"max_rel": 0.0, "sum_rel": 0.0, "max_abs": 0.0})
            acc["max_rel"] = max(acc["max_rel"], float(rel.max()))
            acc["sum_rel"] += float(rel.sum())
            acc["max_abs"] = max(acc["max_abs"], float(mabs.max()))

    def _call_summarize(self, args: tuple, kwargs: dict) -> Any:
        frame = self._frame(args, kwargs)
        if self.spec is None:
            before = self._snapshot_arrays(frame)
            frame.result = self._call_original(args, kwargs)
            self._ensure_spec(frame, self._mutated(frame, before))
            ins = [before.get(v.optic.root_argument) if v.direction == "inout" else v.optic.get(frame)  # type: ignore[union-attr]
                   for v in self._in_vars]
        else:
            ins = self._read_inputs(frame)
            frame.result = self._call_original(args, kwargs)
        outs = self._read_outputs(frame)
        for prefix, variables, values in (("in", self._in_vars, ins), ("out", self._out_vars, outs)):
            for v, value in zip(variables, values):
                self._summary.setdefault(f"{prefix}:{v.name}", RunningStats()).update(np.asarray(value).reshape(-1))
        self._n_rows += self._batch_size(frame) if self.batched else 1
        return frame.result

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per-variable statistics gathered in ``summarize`` mode (``"in:x"``, ``"out:y"`` keys)."""
        return {k: s.summary() for k, s in self._summary.items()}

    def save_summary(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write :meth:`summary` as JSON (default: next to the store, ``<store>.summary.json``)."""
        import json

        if path is None:
            if self.store_path is None:
                raise ValueError(f"{self.name}: give a path (no store configured)")
            path = self.store_path.with_name(self.store_path.name + ".summary.json")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"function": self.name, "variables": self.summary()}, indent=1))
        return path

    def _reset_counters(self) -> None:
        self._n_calls = 0
        self._n_rows = 0
        self._n_original = 0
        self._n_model = 0
        self._n_model_rows = 0
        self._n_fallbacks = 0
        self._n_captured = 0
        self._t_original = 0.0
        self._t_model = 0.0
        self._shadow_rows = 0
        self._shadow_misses = 0
        self._shadow_err: dict[str, dict[str, float]] = {}

    @property
    def stats(self) -> SurrogateStats:
        """Counters since creation (or :meth:`reset_stats`)."""
        shadow = {
            k: {"max_rel": v["max_rel"], "mean_rel": v["sum_rel"] / max(self._shadow_rows, 1), "max_abs": v["max_abs"]}
            for k, v in self._shadow_err.items()
        }
        return SurrogateStats(
            calls=self._n_calls, rows=self._n_rows, original_calls=self._n_original, model_calls=self._n_model,
            model_rows=self._n_model_rows, fallbacks=self._n_fallbacks, captured_rows=self._n_captured,
            time_original_s=self._t_original, time_model_s=self._t_model, shadow_rows=self._shadow_rows,
            shadow_misses=self._shadow_misses, shadow_error=shadow,
        )

    def reset_stats(self) -> None:
        self._reset_counters()
