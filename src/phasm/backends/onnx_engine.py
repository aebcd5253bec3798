"""An onnxruntime session tuned for latency, with preallocated buffers for small batches.

``session.run(None, {"x": X})`` spends most of a batch-1 call in Python-side work:
building the feed dict, validating it, allocating and converting the outputs.
:class:`OnnxEngine` binds, per batch size up to :attr:`OnnxEngine.small_batch` rows
(per thread), one float32 input buffer and the output buffers to an ``IOBinding``
once; a call copies the rows into the input buffer, runs the bound session and
returns copies of the outputs.  Larger batches go to the session's C++ ``run``
with the caller's (contiguous float32) rows as they are.

The session: ``intra_op_num_threads`` as asked (default 1, the fastest for small
batches on a busy machine), one inter-op thread, sequential execution, all graph
optimisations, no custom operator libraries, and the model given as bytes (the
runtime opens no file).  ``device=None`` uses onnxruntime-gpu's
``CUDAExecutionProvider`` when it is installed and offers it, else the CPU.

Example
-------
>>> import numpy as np
>>> from phasm.backends.onnx_graph import DenseNet, dense_graph
>>> net = DenseNet([("linear", np.full((1, 2), 0.5, np.float32), np.zeros(1, np.float32))])
>>> model, _ = dense_graph([net], n_in=2, n_out=1)
>>> engine = OnnxEngine(model.SerializeToString(), n_in=2, output_shapes=[(None, 1)])
>>> engine.run(np.array([[1.0, 3.0]], np.float32))
array([[2.]], dtype=float32)
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np

from phasm.errors import BackendError

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"


def available_providers() -> list[str]:
    """onnxruntime's execution providers in this installation (``onnxruntime-gpu`` adds CUDA)."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def execution_providers(device: str | None, available: Sequence[str] | None = None) -> list[str]:
    """Providers for ``device``: ``None`` -> CUDA when offered, else CPU; ``"cpu"``; ``"cuda"`` (must be offered).

    >>> execution_providers(None, ["CUDAExecutionProvider", "CPUExecutionProvider"])
    ['CUDAExecutionProvider', 'CPUExecutionProvider']
    >>> execution_providers(None, ["CPUExecutionProvider"])
    ['CPUExecutionProvider']
    """
    offered = list(available_providers() if available is None else available)
    kind = None if device is None else str(device).split(":")[0]
    if kind not in (None, "cpu", "cuda"):
        raise BackendError(f"onnx: device must be None, 'cpu' or 'cuda[:N]', got {device!r}")
    if kind == "cpu" or (kind is None and CUDA_PROVIDER not in offered):
        return [CPU_PROVIDER]
    if CUDA_PROVIDER not in offered:
        raise BackendError(f"onnx: device {device!r} asked, but onnxruntime offers {offered}; "
                           "install onnxruntime-gpu (in place of onnxruntime) for CUDA")
    return [CUDA_PROVIDER, CPU_PROVIDER]


class _Slot:
    """Buffers and binding for one batch shape in one thread."""

    __slots__ = ("shape", "x", "outputs", "first", "binding")

    def __init__(self, x: np.ndarray, outputs: list[np.ndarray], binding: Any) -> None:
        self.shape, self.x, self.outputs, self.first, self.binding = x.shape, x, outputs, outputs[0], binding


class OnnxEngine:
    """One verified ONNX model in an onnxruntime session: float32 rows ``(n, n_in)`` in, outputs out.

    Parameters
    ----------
    model_bytes: the serialized model (already verified: :func:`phasm.backends.onnx_check.verify_model`).
    n_in: input width, or ``None`` when the width varies (set models' encoded rows).
    output_shapes: per output, its shape with ``None`` for the batch axis (``[(None, 3)]``, ``[(5, None, 3)]``).
    threads: onnxruntime intra-op threads.
    device: ``None`` (CUDA when onnxruntime-gpu offers it, else CPU), ``"cpu"`` or ``"cuda"``.
    """

    small_batch = 64

    def __init__(self, model_bytes: bytes, *, n_in: int | None, output_shapes: Sequence[Sequence[int | None]],
                 threads: int = 1, device: str | None = None, where: str = "onnx model") -> None:
        import onnxruntime as ort

        if int(threads) < 1:
            raise BackendError(f"onnx: threads must be >= 1, got {threads}")
        self.providers = execution_providers(device)
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        so.add_session_config_entry("session.load_model_format", "ONNX")
        if int(threads) > 1:  # idle worker threads sleep instead of spinning: the caller's own code needs the cores
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(model_bytes, so, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own exception types for models it cannot run
            raise BackendError(f"{where}: onnxruntime cannot load the model: {' '.join(str(exc).split())[:300]}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise BackendError(f"{where}: the model takes {len(inputs)} inputs ({[i.name for i in inputs]}); "
                               "phasm feeds one (batch, features) float32 matrix")
        self.input_name = inputs[0].name
        outputs = self.session.get_outputs()
        if len(outputs) < len(output_shapes):
            raise BackendError(f"{where}: the model has {len(outputs)} outputs, {len(output_shapes)} expected")
        self.output_names = [o.name for o in outputs[: len(output_shapes)]]
        self.output_shapes = [tuple(s) for s in output_shapes]
        self.n_in = None if n_in is None else int(n_in)
        self.threads = int(threads)
        self.device = "cuda" if self.providers[0] == CUDA_PROVIDER else "cpu"
        self.where = where
        # The bound fast path needs the session's C++ object; without it (another onnxruntime) run() is used.
        self._native: Any = getattr(self.session, "_sess", None)
        self._bind = self.device == "cpu" and self._native is not None and hasattr(self.session, "io_binding")
        self._local = threading.local()

    def _shape(self, template: tuple[int | None, ...], n: int) -> tuple[int, ...]:
        return tuple(n if d is None else int(d) for d in template)

    def _slot(self, n: int, width: int) -> _Slot:
        """This thread's buffers for ``(n, width)`` rows (made on first use), remembered as its last shape."""
        local = self._local
        slots: dict[tuple[int, int], _Slot] | None = getattr(local, "slots", None)
        if slots is None:
            slots = local.slots = {}
        slot = slots.get((n, width))
        if slot is None:
            x = np.empty((n, width), np.float32)
            outs = [np.empty(self._shape(t, n), np.float32) for t in self.output_shapes]
            binding = self.session.io_binding()
            binding.bind_input(self.input_name, "cpu", 0, np.float32, list(x.shape), x.ctypes.data)
            for name, out in zip(self.output_names, outs):
                binding.bind_output(name, "cpu", 0, np.float32, list(out.shape), out.ctypes.data)
            slot = slots[(n, width)] = _Slot(x, outs, binding._iobinding)
        local.last = slot
        return slot

    def _check(self, X: np.ndarray) -> None:
        if X.ndim != 2 or (self.n_in is not None and X.shape[1] != self.n_in):
            raise BackendError(f"{self.where}: X must be (n, {self.n_in if self.n_in is not None else 'width'}) rows, "
                               f"got shape {X.shape}")

    def run_all(self, X: np.ndarray) -> list[np.ndarray]:
        """Every declared output for the rows ``X`` (any real dtype; float32 inside), fresh arrays."""
        X = np.asarray(X)
        if X.ndim != 2:
            self._check(X)
        n = X.shape[0]
        if self._bind and n <= self.small_batch:
            if self.n_in is not None and X.shape[1] != self.n_in:
                self._check(X)
            slot = self._slot(n, X.shape[1])
            np.copyto(slot.x, X, casting="same_kind")
            self._native.run_with_iobinding(slot.binding, None)
            return [o.copy() for o in slot.outputs]
        self._check(X)
        x = X if (X.dtype == np.float32 and X.flags.c_contiguous) else np.ascontiguousarray(X, np.float32)
        # Larger batches: the session's own run on the caller's rows (no copy in). Binding preallocated
        # outputs measured 6-8% slower here at 1024-8192 rows (the runtime writes its own buffer first);
        # the C++ session's run skips the Python wrapper's per-call checks of the feed.
        runner = self._native if self._native is not None else self.session
        got = runner.run(self.output_names, {self.input_name: x}, None)
        return [np.asarray(o, np.float32) for o in got]

    def run(self, X: np.ndarray) -> np.ndarray:
        """The first output for the rows ``X``.

        Batches of at most :attr:`small_batch` rows run on this thread's preallocated buffers; a
        call with the same shape as this thread's previous one goes straight to them.
        """
        slot = getattr(self._local, "last", None)
        if slot is not None and getattr(X, "shape", None) == slot.shape:
            slot.x[...] = X
            self._native.run_with_iobinding(slot.binding, None)
            return slot.first.copy()  # type: ignore[no-any-return]
        return self.run_all(X)[0]
