"""The "each element of a collection" optic: a list of objects <-> a 2-D array of their fields.

``Each("hits", fields=["x", "y", "z", "e"])`` reads the argument ``hits`` (a
list, tuple or other sequence of objects, dicts, or a numpy array) into an
``(m, 4)`` array, ``m`` varying from call to call (a ragged variable).
Writing back fills the fields of the existing elements in place, or builds a
new collection: objects of a class you give (``cls=Cluster``, built with
``Cluster(**fields)``), else dicts.

Example
-------
>>> from types import SimpleNamespace as NS
>>> frame = CallFrame({"hits": [NS(x=1.0, y=2.0), NS(x=3.0, y=4.0)]})
>>> opt = Each("hits", fields=["x", "y"])
>>> opt, opt.get(frame).tolist()
(each(hits)[x, y], [[1.0, 2.0], [3.0, 4.0]])
"""

from __future__ import annotations

import operator
import re
import typing
from typing import Any, Callable, Sequence

import numpy as np

from phasm.bindings.build import check_class, class_ref
from phasm.bindings.optics import CallFrame, Optic, OpticError
from phasm.bindings.paths import Path
from phasm.bindings.ragged import RaggedArray

_IDENT = re.compile(r"[A-Za-z_]\w*$")
_SMALL = 64  # below this many values, one pass with tuple getters beats per-field fromiter


def _field_casts(cls: Any, names: Sequence[str]) -> list[Any] | None:
    """``int``/``bool`` converters for fields a class annotates so (values arrive as floats)."""
    if cls is dict:
        return None
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        return None
    casts = [hints.get(n) if hints.get(n) in (int, bool) else None for n in names]
    return casts if any(casts) else None


class Each(Optic):
    """Each element of a collection, as rows of ``fields`` (``None``: the elements are numbers)."""

    kind = "each"

    def __init__(
        self,
        collection: Path | Optic | str,
        fields: Sequence[str] | None = None,
        *,
        cls: Any = None,
        max_len: int | None = None,
        dtype: Any = "float64",
    ) -> None:
        if isinstance(collection, str):
            collection = Path.parse(collection)
        elif not isinstance(collection, Path):
            collection = Path(collection)
        self.collection: Path = collection
        if fields is not None:
            if isinstance(fields, str) or not fields:
                raise OpticError(f"each({collection!r}): fields must be a non-empty list of names, got {fields!r}")
            fields = tuple(str(f) for f in fields)
        self.fields: tuple[str, ...] | None = fields
        self.cls: type | None = check_class(cls, f"each({collection!r})")
        self.max_len = None if max_len is None else int(max_len)
        self.dtype = np.dtype(dtype)
        self._field_paths = None if fields is None else [Path.parse("e" + (f if f.startswith("[") else "." + f)) for f in fields]
        self._simple = fields is not None and all(_IDENT.match(f) for f in fields)

    # -- reading --------------------------------------------------------------------

    @property
    def element_shape(self) -> tuple[int, ...]:
        return () if self.fields is None else (len(self.fields),)

    def get(self, frame: CallFrame) -> np.ndarray:
        return self.extract(self.collection.get(frame))

    def _check_collection(self, coll: Any) -> Sequence[Any]:
        if isinstance(coll, (list, tuple)):
            pass
        elif isinstance(coll, (str, bytes, dict)) or not hasattr(coll, "__len__") or not hasattr(coll, "__iter__"):
            raise OpticError(f"{self!r}: expected a list, tuple or array of elements, got a {type(coll).__name__}")
        if self.max_len is not None and len(coll) > self.max_len:
            raise OpticError(f"{self!r}: the collection has {len(coll)} elements, more than the declared max_len={self.max_len}")
        return coll

    def extract(self, coll: Any) -> np.ndarray:
        """The ``(m, *element_shape)`` array of one collection."""
        coll = self._check_collection(coll)
        if isinstance(coll, np.ndarray):
            return self._from_array(coll)
        m = len(coll)
        if self.fields is None:
            try:
                return np.fromiter(coll, self.dtype, count=m)
            except (TypeError, ValueError):
                self._diagnose(coll)
                raise
        out = np.empty((m, len(self.fields)), self.dtype)
        if m == 0:
            return out
        if not isinstance(coll, (list, tuple)):
            coll = list(coll)
        getters = self._getters(coll[0])
        try:
            if m * len(self.fields) < _SMALL or getters is None:
                if getters is None:
                    fps = list(zip(self.fields, self._field_paths))  # type: ignore[arg-type]
                    out[:] = [[self._field(e, f, fp) for f, fp in fps] for e in coll]
                else:
                    row = getters[-1]
                    out[:] = [row(e) for e in coll] if len(self.fields) > 1 else [[row(e)] for e in coll]
            else:
                for j, g in enumerate(getters[:-1]):
                    out[:, j] = np.fromiter(map(g, coll), self.dtype, count=m)
        except (AttributeError, KeyError, IndexError, TypeError, ValueError, OverflowError, OpticError):
            self._diagnose(coll)
            raise
        return out

    def _getters(self, first: Any) -> list[Callable[[Any], Any]] | None:
        """Per-field getters plus one all-fields getter (last), for objects or dicts; ``None`` for general paths."""
        if not self._simple:
            return None
        f = self.fields
        assert f is not None
        make: Callable[..., Callable[[Any], Any]] = operator.itemgetter if isinstance(first, dict) else operator.attrgetter
        return [*(make(x) for x in f), make(*f)]

    def _field(self, e: Any, f: str, fp: Path) -> Any:
        if isinstance(e, dict) and _IDENT.match(f):
            return e[f]
        return fp.get_from(e)

    def _from_array(self, arr: np.ndarray) -> np.ndarray:
        if arr.dtype.names:
            if self.fields is None or not all(f in arr.dtype.names for f in self.fields):
                raise OpticError(f"{self!r}: structured array has fields {arr.dtype.names}, expected {self.fields}")
            return np.stack([arr[f].astype(self.dtype) for f in self.fields], axis=-1) if len(arr) else np.empty((0, len(self.fields)), self.dtype)
        expected = self.element_shape
        if arr.shape[1:] != expected:
            raise OpticError(f"{self!r}: array of shape {arr.shape} does not hold elements of shape {expected}")
        return arr.astype(self.dtype, copy=False)

    def _diagnose(self, coll: Sequence[Any]) -> None:
        """Raise the precise error: which element, which field, what is wrong."""
        for i, e in enumerate(coll):
            if self._field_paths is None:
                vals = [("", e)]
            else:
                vals = []
                for f, fp in zip(self.fields, self._field_paths):  # type: ignore[arg-type]
                    try:
                        vals.append((f, self._field(e, f, fp)))
                    except (OpticError, KeyError):
                        what = "key" if isinstance(e, dict) else "attribute"
                        raise OpticError(
                            f"{self!r}: element {i} (a {type(e).__name__}) has no {what} {f!r}"
                        ) from None
            for f, v in vals:
                try:
                    np.asarray(v, self.dtype)
                    ok = np.ndim(v) == 0 and isinstance(v, (int, float, bool, np.number, np.bool_))
                except (TypeError, ValueError, OverflowError):
                    ok = False
                if not ok:
                    where = f"element {i}" + (f" field {f!r}" if f else "")
                    raise OpticError(f"{self!r}: {where} is a {type(v).__name__} ({v!r:.40}), expected a number of dtype {self.dtype}")

    def get_batch(self, frames: Sequence[CallFrame], dtype: Any = None) -> RaggedArray:
        """The collections of a batch of calls as one :class:`RaggedArray` (one extraction pass; elements
        of this optic's dtype)."""
        colls = [self._check_collection(self.collection.get(fr)) for fr in frames]
        lengths = np.fromiter((len(c) for c in colls), np.int64, count=len(colls))
        arrays = [np.asarray(c) for c in colls if isinstance(c, np.ndarray)]
        if len(arrays) == len(colls):
            values = np.concatenate([self._from_array(c) for c in arrays]) if arrays else np.empty((0, *self.element_shape), self.dtype)
        else:
            flat: list[Any] = []
            for c in colls:
                flat.extend(c)
            values = self.extract(flat) if self.max_len is None else Each(self.collection, self.fields, dtype=self.dtype).extract(flat)
        return RaggedArray.from_lengths(values, lengths)

    # -- writing --------------------------------------------------------------------

    def put(self, frame: CallFrame, value: Any, **kw: Any) -> None:
        value = np.asarray(value)
        if value.ndim != 1 + len(self.element_shape) or value.shape[1:] != self.element_shape:
            raise OpticError(f"{self!r}: cannot write values of shape {value.shape}; expected (m, {', '.join(map(str, self.element_shape))})")
        try:
            target = self.collection.get(frame)
        except OpticError:
            target = None
        if isinstance(target, np.ndarray) and target.shape == value.shape and not target.dtype.names:
            target[...] = value
            return
        if isinstance(target, np.ndarray) and target.dtype.names and len(target) == len(value) and self.fields:
            for j, f in enumerate(self.fields):
                target[f] = value[:, j]
            return
        rows = value.tolist()
        if isinstance(target, (list, tuple)) and len(target) == len(rows) and rows and not self._numbers(target):
            if self.fields is not None and self._write_in_place(target, rows):
                return
        built = self._build(rows)
        if isinstance(target, list):
            target[:] = built  # the caller's list sees the new elements
        else:
            self.collection.put(frame, built if not isinstance(target, tuple) else tuple(built))

    @staticmethod
    def _numbers(target: Sequence[Any]) -> bool:
        return isinstance(target[0], (int, float, bool, np.number))

    def _write_in_place(self, target: Sequence[Any], rows: list[Any]) -> bool:
        for j, fp in enumerate(self._field_paths):  # type: ignore[arg-type]
            for e, row in zip(target, rows):
                fp.put(CallFrame({"e": e}), row[j])
        return True

    def _build(self, rows: list[Any]) -> list[Any]:
        if self.fields is None:
            return rows
        if not self._simple:
            raise OpticError(f"{self!r}: cannot build new elements with nested fields {self.fields}; pass a collection to fill")
        names = self.fields
        cls = self.cls if self.cls is not None else dict
        casts = _field_casts(cls, names)
        if casts:
            rows = [[c(x) if c else x for c, x in zip(casts, row)] for row in rows]
        try:
            return [cls(**dict(zip(names, row))) for row in rows]
        except TypeError as exc:
            raise OpticError(f"{self!r}: cannot build {getattr(cls, '__qualname__', cls)}(**{list(names)}): {exc}") from None

    def put_batch(self, frames: Sequence[CallFrame], values: Any, **kw: Any) -> None:
        """Write row ``i`` of a :class:`RaggedArray` into call ``i``."""
        if not isinstance(values, RaggedArray):
            raise OpticError(f"{self!r}: put_batch takes a RaggedArray, got {type(values).__name__}")
        if len(values) != len(frames):
            raise OpticError(f"{self!r}: {len(values)} rows for {len(frames)} calls")
        for fr, v in zip(frames, values.to_list()):
            self.put(fr, v)

    # -- identity -------------------------------------------------------------------

    @property
    def root_argument(self) -> str | None:
        return self.collection.root_argument

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "collection": self.collection.to_json(), "fields": list(self.fields) if self.fields else None,
                             "dtype": self.dtype.str}
        if self.cls is not None:
            d["cls"] = class_ref(self.cls)
        if self.max_len is not None:
            d["max_len"] = self.max_len
        return d

    def __repr__(self) -> str:
        f = "" if self.fields is None else "[" + ", ".join(self.fields) + "]"
        return f"each({self.collection!r}){f}"
