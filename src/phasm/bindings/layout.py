"""Input layouts: how a spec's input variables become the rows a model takes, flat or ragged.

A spec whose inputs all have a fixed shape has the *flat* layout: one float32 row of
``spec.n_in_features`` columns per call.  A spec with variable-length (ragged) inputs has the
*ragged* layout: a :class:`~phasm.bindings.ragged.RaggedInputs` per batch (the fixed inputs as a
matrix, one :class:`~phasm.bindings.ragged.RaggedArray` per set).  The layout is chosen once from
the spec (:func:`input_layout`) and owns everything that differs between the two:

* ``pack_call`` / ``pack_batch``: validated values of the input variables -> model inputs;
* ``standardise``: the input normalisation (per column; for sets, per element feature);
* ``encode``: the float32 matrix a set network trains on (fixed | padded elements | mask);
* ``summarize``: a fixed-width per-call summary (what gates judge for variable-length inputs);
* ``finite_rows``: which calls hold only finite numbers.

The trainer, the artefact, the gates and the backends ask the layout; none of them asks what
kind of inputs it was handed.

Example
-------
>>> from phasm.bindings.spec import Array, Scalar, Spec
>>> from phasm.bindings.declare import each
>>> flat = input_layout(Spec.from_declarations("m.f", {"x": Scalar(), "v": Array(2)}, {"y": Scalar()}))
>>> X = flat.pack_batch({"x": np.array([1.0, 2.0]), "v": np.ones((2, 2))}, 2)
>>> flat.ragged, X.shape, flat.summarize(X).shape
(False, (2, 3), (2, 3))
>>> sets = input_layout(Spec.from_declarations("m.g", {"E": Scalar(), "hits": each("hits", ["x", "y"])}, {"y": Scalar()}))
>>> R = sets.pack_call([2.0, np.array([[1.0, 2.0], [3.0, 4.0]])])
>>> sets.ragged, sets.summarize(R).tolist()    # E, element mean of x and y, element count
(True, [[2.0, 2.0, 3.0, 2.0]])
"""

from __future__ import annotations

import math
from typing import Any, Callable, ClassVar, Generic, Mapping, Sequence, TypeVar

import numpy as np

from phasm.bindings.ragged import RaggedArray, RaggedInputs, encode
from phasm.bindings.spec import Spec, Variable, pack

__all__ = ["FlatLayout", "InputLayout", "RaggedLayout", "input_layout"]

InputsT = TypeVar("InputsT")
#: ``(block, start) -> block``: a map of the normalisation columns ``start, start + 1, ...`` of a block
BlockMap = Callable[[np.ndarray, int], np.ndarray]


class InputLayout(Generic[InputsT]):
    """What a model's inputs look like for one spec; see the module docstring.

    ``n_features``: the columns of the input normalisation (``spec.n_in_features``).
    """

    ragged: ClassVar[bool] = False
    n_features: int

    def pack_call(self, values: Sequence[Any]) -> InputsT:
        """One call's validated input values (in the order of ``spec.inputs``) as a one-row batch."""
        raise NotImplementedError

    def pack_batch(self, values: Mapping[str, Any], n: int) -> InputsT:
        """Per-variable batch values (``(n, *shape)`` arrays, a RaggedArray per set) as ``n`` rows."""
        raise NotImplementedError

    def rows(self, X: InputsT) -> int:
        """How many calls ``X`` holds."""
        raise NotImplementedError

    def take(self, X: InputsT, index: Any) -> InputsT:
        """The calls ``index`` of ``X``."""
        raise NotImplementedError

    def standardise(self, X: InputsT, mean: np.ndarray, scale: np.ndarray, pre: BlockMap | None = None) -> InputsT:
        """``(X - mean) / scale`` per normalisation column, float32.

        ``pre(block, start)``: applied first to each block of normalisation columns ``start ...``
        (a per-variable transform such as a log; for sets, to their element features).
        """
        raise NotImplementedError

    def encode(self, X: InputsT) -> np.ndarray:
        """The float32 matrix a network trains on."""
        raise NotImplementedError

    def summarize(self, X: InputsT) -> np.ndarray:
        """A float32 ``(n, width)`` summary per call, of the same width for every call."""
        raise NotImplementedError

    def finite_rows(self, X: InputsT) -> np.ndarray:
        """Boolean ``(n,)``: calls whose every input number is finite."""
        raise NotImplementedError

    def all_finite(self, X: InputsT) -> bool:
        """Whether every input number of every call is finite."""
        return bool(self.finite_rows(X).all())


class FlatLayout(InputLayout[np.ndarray]):
    """Fixed-shape inputs: a float32 matrix ``(n, n_features)``, the variables packed in spec order."""

    ragged = False

    def __init__(self, variables: Sequence[Variable] = (), *, width: int | None = None) -> None:
        self.variables = tuple(variables)
        self.n_features = int(width) if width is not None else sum(v.size for v in self.variables)

    def pack_call(self, values: Sequence[Any]) -> np.ndarray:
        row = np.empty((1, self.n_features), np.float32)
        col = 0
        for v, x in zip(self.variables, values):
            row[0, col : col + v.size] = np.asarray(x, np.float64).reshape(-1)
            col += v.size
        return row

    def pack_batch(self, values: Mapping[str, Any], n: int) -> np.ndarray:
        return pack(self.variables, values, n)

    def rows(self, X: np.ndarray) -> int:
        return len(X)

    def take(self, X: np.ndarray, index: Any) -> np.ndarray:
        return X[index]

    def standardise(self, X: np.ndarray, mean: np.ndarray, scale: np.ndarray, pre: BlockMap | None = None) -> np.ndarray:
        if pre is not None:
            X = pre(np.asarray(X, np.float32), 0)
        return ((np.asarray(X, np.float32) - mean) / scale).astype(np.float32, copy=False)

    def encode(self, X: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(X, np.float32)

    def summarize(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, np.float32)

    def finite_rows(self, X: np.ndarray) -> np.ndarray:
        A = np.asarray(X)
        return np.asarray(np.isfinite(A.reshape(len(A), -1)).all(axis=1))

    def all_finite(self, X: np.ndarray) -> bool:
        if X.size <= 32:  # one short row: plain Python beats a ufunc pass
            return all(map(math.isfinite, X.reshape(-1).tolist()))
        return bool(np.isfinite(X).all())


class RaggedLayout(InputLayout[RaggedInputs]):
    """Variable-length inputs: :class:`RaggedInputs` (fixed matrix + one RaggedArray per set).

    Normalisation columns: the fixed variables in spec order, then each set's element
    features.  The summary of a call: its fixed inputs, then per set the element mean (0 for
    an empty set) and the element count.
    """

    ragged = True

    def __init__(self, n_fixed: int, set_names: Sequence[str], set_dims: Sequence[int],
                 variables: Sequence[Variable] = ()) -> None:
        self.n_fixed = int(n_fixed)
        self.set_names = [str(s) for s in set_names]
        self.set_dims = [int(k) for k in set_dims]
        self.variables = tuple(variables)
        self.n_features = self.n_fixed + sum(self.set_dims)
        self.summary_width = self.n_fixed + sum(k + 1 for k in self.set_dims)

    @classmethod
    def for_variables(cls, variables: Sequence[Variable]) -> "RaggedLayout":
        fixed = [v for v in variables if not v.ragged]
        sets = [v for v in variables if v.ragged]
        return cls(sum(v.size for v in fixed), [str(v.name) for v in sets], [v.size for v in sets], variables)

    @classmethod
    def of(cls, X: RaggedInputs) -> "RaggedLayout":
        """The layout of existing model inputs (when no spec is at hand)."""
        return cls(X.fixed.shape[1], list(X.sets), [int(np.prod(r.values.shape[1:])) for r in X.sets.values()])

    def pack_call(self, values: Sequence[Any]) -> RaggedInputs:
        fixed_vals = [np.asarray(x, np.float32).reshape(-1) for v, x in zip(self.variables, values) if not v.ragged]
        fixed = (np.concatenate(fixed_vals) if fixed_vals else np.empty(0, np.float32))[None, :]
        sets = {}
        for v, x in zip(self.variables, values):
            if v.ragged:
                # The element width comes from the spec: an empty collection has no shape to infer it from.
                a = np.asarray(x, np.float32)
                sets[str(v.name)] = RaggedArray.trusted(a.reshape(len(a), v.size), np.array([0, len(a)], np.int64))
        return RaggedInputs(fixed, sets)

    def pack_batch(self, values: Mapping[str, Any], n: int) -> RaggedInputs:
        fixed_vars = [v for v in self.variables if not v.ragged]
        fixed = pack(fixed_vars, values, n) if fixed_vars else np.empty((n, 0), np.float32)
        sets = {}
        for v in self.variables:
            if v.ragged:
                r = values[str(v.name)]
                sets[str(v.name)] = RaggedArray.trusted(np.asarray(r.values, np.float32).reshape(len(r.values), v.size),
                                                        r.offsets)
        return RaggedInputs(fixed, sets)

    def rows(self, X: RaggedInputs) -> int:
        return len(X)

    def take(self, X: RaggedInputs, index: Any) -> RaggedInputs:
        return X.take(np.asarray(index))

    def standardise(self, X: RaggedInputs, mean: np.ndarray, scale: np.ndarray,
                    pre: BlockMap | None = None) -> RaggedInputs:
        nf = X.fixed.shape[1]
        fixed = np.asarray(X.fixed, np.float32) if pre is None else pre(np.asarray(X.fixed, np.float32), 0)
        fixed = ((fixed - mean[:nf]) / scale[:nf]).astype(np.float32)
        sets, col = {}, nf
        for name, r in X.sets.items():
            k = r.values.shape[1]
            vals = np.asarray(r.values, np.float32) if pre is None else pre(np.asarray(r.values, np.float32), col)
            vals = ((vals - mean[col : col + k]) / scale[col : col + k]).astype(np.float32)
            sets[name] = RaggedArray.trusted(vals, r.offsets)
            col += k
        return RaggedInputs(fixed, sets)

    def encode(self, X: RaggedInputs) -> np.ndarray:
        return encode(X)

    def summarize(self, X: RaggedInputs) -> np.ndarray:
        cols = [np.asarray(X.fixed, np.float64)]
        for r in X.sets.values():
            lengths = r.lengths
            vals = np.asarray(r.values, np.float64).reshape(len(r.values), _element_size(r))
            sums = np.zeros((len(r), vals.shape[1]))
            if len(vals):
                np.add.at(sums, np.repeat(np.arange(len(r)), lengths), vals)
            cols.append(sums / np.maximum(lengths, 1)[:, None])
            cols.append(lengths[:, None].astype(np.float64))
        return np.hstack(cols).astype(np.float32)

    def finite_rows(self, X: RaggedInputs) -> np.ndarray:
        ok = np.asarray(np.isfinite(X.fixed).all(axis=1))
        for r in X.sets.values():
            bad = ~np.isfinite(r.values.reshape(len(r.values), _element_size(r))).all(axis=1)
            if bad.any():
                ok[np.repeat(np.arange(len(r)), r.lengths)[bad]] = False
        return ok


def _element_size(r: RaggedArray) -> int:
    # reshape(n, -1) cannot infer the width of zero elements; the element shape is known.
    return int(np.prod(r.values.shape[1:], dtype=np.int64))


def input_layout(spec: Spec) -> FlatLayout | RaggedLayout:
    """The layout of ``spec``'s inputs: ragged when any input variable is variable-length."""
    if any(v.ragged for v in spec.inputs):
        return RaggedLayout.for_variables(spec.inputs)
    return FlatLayout(spec.inputs)
