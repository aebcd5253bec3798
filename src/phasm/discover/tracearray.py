"""A traced numpy array: an ``ndarray`` view that logs element reads and writes.

:class:`TracedArray` shares its memory with the array it views, so in-place
writes reach the data; its indexing, ufunc and array-function hooks report
reads and writes to the active :class:`~phasm.discover.recorder.Recorder`.
Each traced array keeps a boolean mask of the elements the call has written,
so a read of an element the call wrote itself is told apart from a read of
the caller's data (read-before-write: the array is an input).

Example
-------
>>> import numpy as np
>>> from phasm.discover.recorder import Recorder
>>> rec = Recorder()
>>> a = traced(np.zeros(3), rec, (("arg", "a"),))
>>> with rec:
...     a[0] = 1.0
...     b = a[0] * 2      # reads only what the call wrote
>>> acc = rec.accesses[(("arg", "a"),)]
>>> acc.first, acc.rbw
('write', False)
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from phasm.discover import recorder as _rec
from phasm.discover.paths import Path
from phasm.discover.recorder import Recorder


class _Tracker:
    """Per-array state: its path and which elements the call has written."""

    __slots__ = ("path", "mask", "done", "rec")

    def __init__(self, rec: Recorder, path: Path, shape: tuple[int, ...]) -> None:
        self.rec = rec
        self.path = path
        self.mask = np.zeros(shape, dtype=bool)
        self.done = False  # read-before-write and a write both seen: nothing more to learn

    def read(self, mask: np.ndarray | None) -> None:
        acc = self.rec.access(self.path)
        acc.read = True
        if acc.first is None:
            acc.first = "read"
        region = self.mask if mask is None else mask
        if not acc.rbw and not region.all():
            acc.rbw = True
        self.done = acc.rbw and acc.written

    def write(self, mask: np.ndarray | None, key: Any = Ellipsis) -> None:
        acc = self.rec.access(self.path)
        if acc.first is None:
            acc.first = "write"
        acc.written = True
        if mask is not None:
            try:
                mask[key] = True
            except (IndexError, ValueError, TypeError):
                pass
        self.done = acc.rbw and acc.written


def _plain(x: Any) -> Any:
    return x.view(np.ndarray) if isinstance(x, TracedArray) else x


def _plain_key(key: Any) -> Any:
    t = type(key)
    if t is tuple:
        for k in key:
            if type(k) is TracedArray:
                return tuple(_plain(k) for k in key)
        return key
    return key.view(np.ndarray) if t is TracedArray else key


def _is_basic(key: Any) -> bool:
    items = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, (int, np.integer, slice)) for k in items)


def _note_read(x: Any) -> None:
    if type(x) is TracedArray and _rec.ACTIVE is not None:
        tr = x._ph
        if tr is not None and not tr.done:
            tr.read(x._ph_mask)


def _note_write(x: Any) -> None:
    if type(x) is TracedArray and _rec.ACTIVE is not None:
        tr = x._ph
        if tr is not None and not tr.done:
            tr.write(x._ph_mask)


def _flatten(values: Any) -> list:
    out = []
    for v in values:
        if isinstance(v, (list, tuple)):
            out.extend(_flatten(v))
        else:
            out.append(v)
    return out


# numpy functions that write into their first argument without reading it, or read and write it.
_WRITE_FIRST = {"copyto", "put", "place", "putmask", "fill_diagonal"}


class TracedArray(np.ndarray):
    """An ``ndarray`` view that reports element reads and writes to the active recorder."""

    _ph: _Tracker | None = None
    _ph_mask: np.ndarray | None = None

    def __array_finalize__(self, obj: Any) -> None:
        # Views made by numpy itself (reshape, transpose, ...): same tracker, unknown mask mapping.
        self._ph = getattr(obj, "_ph", None)
        self._ph_mask = None

    def __getitem__(self, key: Any) -> Any:
        tr = self._ph
        pkey = _plain_key(key)
        result = np.ndarray.__getitem__(self, pkey)
        if tr is None or tr.done or _rec.ACTIVE is None:
            return result
        if isinstance(result, TracedArray) and _is_basic(pkey):
            # A view: not a read yet; it shares the tracker and (a view of) the written mask.
            if self._ph_mask is not None:
                try:
                    result._ph_mask = self._ph_mask[pkey]
                except (IndexError, ValueError):
                    result._ph_mask = None
            return result
        if not tr.done:
            region = None
            if self._ph_mask is not None:
                try:
                    region = np.asarray(self._ph_mask[pkey])
                except (IndexError, ValueError):
                    region = None
            tr.read(region)
        return result.view(np.ndarray) if isinstance(result, TracedArray) else result

    def __setitem__(self, key: Any, value: Any) -> None:
        _note_read(value)
        pkey = _plain_key(key)
        tr = self._ph
        if tr is not None and _rec.ACTIVE is not None and not tr.done:
            tr.write(self._ph_mask, pkey)
        np.ndarray.__setitem__(self.view(np.ndarray), pkey, _plain(value))

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        for x in inputs:
            _note_read(x)
        out = kwargs.get("out")
        if out is not None:
            for x in out:
                _note_write(x)
            kwargs["out"] = tuple(x.view(np.ndarray) if type(x) is TracedArray else x for x in out)
        if method == "at":  # ufunc.at(a, idx, b): reads and writes a in place
            _note_write(inputs[0])
        plain = [x.view(np.ndarray) if type(x) is TracedArray else x for x in inputs]
        result = (ufunc(*plain, **kwargs) if method == "__call__" else getattr(ufunc, method)(*plain, **kwargs))
        if out is not None:
            return out[0] if len(out) == 1 else tuple(out)
        return result

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        name = getattr(func, "__name__", "")
        rest = list(args)
        if name in _WRITE_FIRST and rest:
            target = rest.pop(0)
            if name != "copyto":
                _note_read(target)
            _note_write(target)
        for x in _flatten(rest) + _flatten(v for k, v in kwargs.items() if k != "out"):
            _note_read(x)
        out = kwargs.get("out")
        if out is not None:
            for x in out if isinstance(out, tuple) else (out,):
                _note_write(x)
        pargs = [_plain(a) if not isinstance(a, (list, tuple)) else type(a)(_plain(x) for x in a) for a in args]
        pkwargs = {k: (_plain(v) if not isinstance(v, tuple) else tuple(_plain(x) for x in v)) for k, v in kwargs.items()}
        result = func(*pargs, **pkwargs)
        if out is not None:
            return out
        return result

    # ndarray methods implemented in C that read values without going through ufuncs.
    def _read_method(name: str) -> Callable[..., Any]:  # type: ignore[misc]
        base = getattr(np.ndarray, name)

        def method(self: "TracedArray", *a: Any, **kw: Any) -> Any:
            _note_read(self)
            result = base(self.view(np.ndarray), *a, **kw)
            return result

        method.__name__ = name
        return method

    for _name in ("copy", "astype", "tolist", "tobytes", "item", "flatten", "dot", "__iter__",
                  "__float__", "__int__", "__bool__", "__index__", "__repr__", "__str__", "__reduce__",
                  "__array__", "__deepcopy__", "__copy__"):
        locals()[_name] = _read_method(_name)
    del _name, _read_method

    def fill(self, value: Any) -> None:
        _note_write(self)
        np.ndarray.fill(self.view(np.ndarray), value)

    def sort(self, *a: Any, **kw: Any) -> None:
        _note_read(self)
        _note_write(self)
        np.ndarray.sort(self.view(np.ndarray), *a, **kw)


def traced(array: np.ndarray, rec: Recorder, path: Path) -> TracedArray:
    """A traced view of ``array`` reporting to ``rec`` under ``path``."""
    view = array.view(TracedArray)
    view._ph = _Tracker(rec, path, array.shape)
    view._ph_mask = view._ph.mask
    return view
