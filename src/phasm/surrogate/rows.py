"""Many plain calls at once: their model rows gathered in one pass, their return values built in one pass.

A deferred batch (:mod:`phasm.surrogate.batching`) and ``fn.map`` / ``fn.batch`` hold
plain positional calls of a function whose arguments are its model row of floats
(:attr:`CallPlan.float_row`) as argument tuples, or as one float array per argument.
These functions turn them into the plan's reused float32 buffer, and the model's
answers into the values one call at a time would return, without per-call work.

Example
-------
>>> import phasm
>>> @phasm.surrogate(inputs={"x": phasm.Scalar(), "y": phasm.Scalar()}, outputs={"z": phasm.Scalar()})
... def f(x, y):
...     return x * y
>>> X = rows_of_args(f.codec.plan, [(1.0, 2.0), (3.0, 4.0)])
>>> X.dtype.name, X.tolist()
('float32', [[1.0, 2.0], [3.0, 4.0]])
>>> results_of_rows(f.codec.plan, np.array([[2.0], [12.0]], np.float32))
[2.0, 12.0]
"""

from __future__ import annotations

from itertools import chain
from typing import Any, Sequence

import numpy as np

from phasm.surrogate.codec import CallPlan

__all__ = ["column_values", "results_of_rows", "rows_of_args", "rows_of_columns"]


def rows_of_args(plan: CallPlan, calls: Sequence[tuple[Any, ...]]) -> np.ndarray:
    """The model rows ``(len(calls), n_in)`` of plain positional calls whose arguments are floats
    (:attr:`CallPlan.float_row`, arguments of :data:`~phasm.surrogate.codec.FLOAT_TYPES`): one conversion
    pass, each number rounded to float32 as one call's packing rounds it."""
    n = len(calls)
    flat = np.fromiter(chain.from_iterable(calls), np.float64, n * plan.n_in)
    X = plan.buffers.get(n)
    X[...] = flat.reshape(n, plan.n_in)
    return X


def rows_of_columns(plan: CallPlan, columns: Sequence[np.ndarray]) -> np.ndarray:
    """The model rows of plain positional calls given as one float array per argument (float32 or
    float64, 1-D, equal lengths): each column cast once into a reused buffer."""
    X = plan.buffers.get(len(columns[0]))
    for j, c in enumerate(columns):
        X[:, j] = c
    return X


def results_of_rows(plan: CallPlan, Y: np.ndarray) -> list[Any] | None:
    """The return values of plain positional calls answered by rows ``Y``, built all at once, the same
    values :meth:`CallCodec.put_outputs` builds one call at a time; ``None`` when the outputs need the
    per-call path."""
    form = plan.result_form
    if form is None:
        return None
    if form[0] == "value":
        return column_values(Y, form[1], form[2])
    if form[0] == "tuple":
        return list(zip(*(column_values(Y, col, kind) for col, kind in form[1])))
    keys = [k for k, _, _ in form[1]]
    return [dict(zip(keys, row)) for row in zip(*(column_values(Y, col, kind) for _, col, kind in form[1]))]


def column_values(Y: np.ndarray, col: int, kind: str) -> list[Any]:
    """Column ``col`` of ``Y`` as the Python scalars one call returns: floats; integers and booleans rounded
    (half to even) as :meth:`CallCodec.put_outputs` rounds them."""
    values: list[Any] = Y[:, col].tolist()
    if kind in "iu":
        return [round(x) for x in values]
    if kind == "b":
        return [bool(round(x)) for x in values]
    return values
