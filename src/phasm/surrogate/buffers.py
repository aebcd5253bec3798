"""Reused model-input buffers: one aligned, C-contiguous float32 ``(n, width)`` matrix per batch size and thread.

A batch's input columns are gathered once into such a buffer (casting as they are
copied) and handed to the backend as they lie: a torch backend wraps the same
memory with ``torch.from_numpy``, so a row crosses from the caller's arrays to the
network in one pass.  Buffers are kept per thread (two threads never share one)
and per batch size, up to :attr:`RowBuffers.max_bytes` per thread; a buffer is
valid until the same thread asks for one of the same size again, so a model or
gate must not keep the matrix it was given beyond the call.

Example
-------
>>> buffers = RowBuffers(3)
>>> a = buffers.get(4)
>>> a.shape, a.dtype.name, a.flags.c_contiguous, a.ctypes.data % ALIGN
((4, 3), 'float32', True, 0)
>>> buffers.get(4) is a      # the same size again, the same thread: the same buffer
True
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["ALIGN", "RowBuffers", "aligned_empty"]

ALIGN = 64  # bytes: a cache line, and the widest SIMD load (AVX-512)


def aligned_empty(shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
    """An uninitialised C-contiguous array whose first byte lies on an :data:`ALIGN`-byte boundary."""
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    raw = np.empty(nbytes + ALIGN, np.uint8)
    start = (-raw.ctypes.data) % ALIGN
    return raw[start : start + nbytes].view(dt).reshape(shape)


class RowBuffers:
    """Per-thread float32 ``(n, width)`` buffers, one per batch size (see the module docstring)."""

    #: bytes of buffers one thread keeps; beyond it the least recently created ones are dropped
    max_bytes = 64 << 20

    def __init__(self, width: int) -> None:
        self.width = int(width)
        self._local = threading.local()

    def get(self, n: int) -> np.ndarray:
        """The calling thread's buffer for ``n`` rows (created on first use; contents undefined)."""
        cache: dict[int, np.ndarray] | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = {}
        buf = cache.get(n)
        if buf is None:
            buf = aligned_empty((n, self.width))
            need = buf.nbytes
            while cache and sum(b.nbytes for b in cache.values()) + need > self.max_bytes:
                cache.pop(next(iter(cache)))  # the oldest size first
            if need <= self.max_bytes:
                cache[n] = buf
        return buf
