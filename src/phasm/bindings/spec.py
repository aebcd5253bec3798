"""Specs: the named, typed, shaped variables of one function.

A :class:`Variable` is one model variable (a scalar or a fixed-shape array per
call) with a direction: ``in`` (read by the function), ``out`` (produced) or
``inout`` (read and written in place).  A :class:`Spec` is the ordered set of a
function's variables; it has a stable hash that is stored with every capture
and every model so that mismatches are caught, never silently served.

A spec read from a file (:meth:`Spec.from_json`: a store, a model folder)
carries names, shapes, dtypes and directions only: its variables have no
optic (the file's optic records are kept as text for display).  Which objects
a call reads and writes comes from the code that declares the surrogate.

Example
-------
>>> from phasm.bindings.spec import Array, Scalar, Spec
>>> spec = Spec.from_declarations(
...     "heat.solve",
...     inputs={"f": Array((7, 7)), "alpha": Scalar()},
...     outputs={"u": Array((7, 7))},
... )
>>> spec.n_in_features, spec.n_out_features
(50, 49)
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

import numpy as np

from phasm.bindings.optics import Arg, Optic, Return, describe_record
from phasm.errors import SpecError

__all__ = ["Array", "DIRECTIONS", "Scalar", "Spec", "SpecError", "Variable", "declare_variables", "pack", "unpack"]

DIRECTIONS = ("in", "out", "inout")


@dataclass(frozen=True)
class Variable:
    """One model variable: a scalar or a fixed-shape array per call.

    ``shape`` excludes the batch axis: ``()`` for a scalar, ``(7, 7)`` for a
    7x7 grid.  ``optic`` says where the value lives in the call (an argument,
    the return value, an attribute ...); ``None`` until the variable is bound
    to a function, and for variables read from a file.  ``recorded_optic``:
    the optic record such a file holds, data for display only (:attr:`where`).
    """

    name: str | None
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    direction: str = "in"
    optic: Optic | None = None
    ragged: bool = False
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    recorded_optic: Mapping[str, Any] | None = field(default=None, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise SpecError(
                f"variable {self.name!r}: direction must be one of {DIRECTIONS}, got {self.direction!r}"
            )
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        if any(s < 0 for s in self.shape):
            raise SpecError(f"variable {self.name!r}: negative dimension in shape {self.shape}")
        if 0 in self.shape and self.name is not None:  # checked once named; HDF5 cannot chunk it, nor a model use it
            raise SpecError(f"variable {self.name!r}: shape {self.shape} has no elements; expected every dimension "
                            ">= 1 (leave an always-empty array out of inputs=/outputs=)")
        if self.dtype.kind not in "biuf":
            raise SpecError(
                f"variable {self.name!r}: dtype must be numeric (bool, int, uint, float), got {self.dtype}"
            )

    @property
    def size(self) -> int:
        """Number of scalar features this variable contributes to a model row.

        A ragged output with ``meta['max_len']`` M takes ``1 + M * k`` columns (count, padded
        elements); a ragged input counts its ``k`` element features (set models take it apart).
        """
        k = int(math.prod(self.shape))
        if self.ragged and self.direction == "out" and self.meta.get("max_len") is not None:
            return 1 + int(self.meta["max_len"]) * k
        return k

    @property
    def is_input(self) -> bool:
        return self.direction in ("in", "inout")

    @property
    def is_output(self) -> bool:
        return self.direction in ("out", "inout")

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype.str,
            "direction": self.direction,
        }
        if self.optic is not None:
            d["optic"] = self.optic.to_json()
        elif self.recorded_optic is not None:
            d["optic"] = dict(self.recorded_optic)
        if self.ragged:
            d["ragged"] = True
        if self.meta:
            d["meta"] = dict(self.meta)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Variable":
        """A variable from its record: no optic (see the module docstring); the optic record is kept as data."""
        try:
            record = d.get("optic")
            return cls(
                name=str(d["name"]),
                shape=tuple(d["shape"]),
                dtype=np.dtype(d["dtype"]),
                direction=str(d["direction"]),
                ragged=bool(d.get("ragged", False)),
                meta=dict(d.get("meta", {})),
                recorded_optic=dict(record) if isinstance(record, Mapping) else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(f"malformed variable record {dict(d)!r}: {exc}") from None

    @property
    def where(self) -> str:
        """Where the variable lives in a call, as text (its optic, or the optic record of a file)."""
        if self.optic is not None:
            return repr(self.optic)
        return describe_record(self.recorded_optic) if self.recorded_optic is not None else ""

    def describe(self) -> str:
        shape = "scalar" if not self.shape else "x".join(map(str, self.shape))
        return f"{self.name} [{self.direction}] {shape} {self.dtype}"

    # -- value checking ---------------------------------------------------

    def check_value(self, value: Any, *, batch: int | None = None, where: str = "") -> np.ndarray:
        """Convert ``value`` to an array of this variable's dtype and check its shape.

        ``batch`` is the expected leading axis (``None``: one call, no batch
        axis).  Raises :class:`SpecError` naming the variable, the expected
        and the actual shape or dtype.
        """
        label = f"{where}variable {self.name!r}"
        arr = _as_numeric_array(value, label)
        if not np.can_cast(arr.dtype, self.dtype, "same_kind") and not (
            arr.dtype.kind == "b" and self.dtype.kind in "iuf"
        ):
            raise SpecError(
                f"{label}: expected dtype {self.dtype} (or one that casts safely to it), got {arr.dtype}"
            )
        if self.ragged:
            return self._check_ragged(arr, label, batch)
        expected = self.shape if batch is None else (batch, *self.shape)
        if arr.shape != expected:
            raise SpecError(f"{label}: expected shape {expected}, got {arr.shape}")
        return arr

    def _check_ragged(self, arr: np.ndarray, label: str, batch: int | None) -> np.ndarray:
        """A ragged value of one call: ``(m, *shape)`` with any ``m`` (up to ``meta['max_len']``)."""
        if batch is not None:
            raise SpecError(f"{label}: ragged variables are supported in unbatched functions only")
        if arr.ndim != 1 + len(self.shape) or arr.shape[1:] != self.shape:
            raise SpecError(
                f"{label}: expected a variable-length array of shape (m, {', '.join(map(str, self.shape))}), "
                f"got {arr.shape}"
            )
        max_len = self.meta.get("max_len")
        if max_len is not None and arr.shape[0] > max_len:
            raise SpecError(f"{label}: {arr.shape[0]} elements, more than the declared max_len={max_len}")
        return arr

    @property
    def ragged_shape(self) -> tuple[int | None, ...]:
        """Per-call shape with ``None`` for the variable length: ``(None, k)`` for a ragged variable."""
        return (None, *self.shape) if self.ragged else self.shape


def _as_numeric_array(value: Any, label: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        arr = value
    else:
        try:
            arr = np.asarray(value)
        except Exception as exc:  # ragged nested lists and the like
            raise SpecError(f"{label}: cannot convert {type(value).__name__} to an array: {exc}") from None
    if arr.dtype.kind not in "biufc":
        if isinstance(value, int):  # a Python int beyond 64 bits
            raise SpecError(f"{label}: the integer 2**{abs(value).bit_length() - 1}... is too large for a 64-bit number")
        raise SpecError(
            f"{label}: expected a numeric value, got {type(value).__name__} with dtype {arr.dtype}"
        )
    return arr


def Scalar(dtype: Any = "float64", direction: str = "in", *, optic: Optic | None = None) -> Variable:
    """Declare a scalar variable.

    >>> Scalar().shape
    ()
    """
    return Variable(None, (), np.dtype(dtype), direction, optic)


def Array(
    shape: Iterable[int] | int,
    dtype: Any = "float64",
    direction: str = "in",
    *,
    optic: Optic | None = None,
) -> Variable:
    """Declare a fixed-shape array variable (shape per call, without batch axis).

    ``direction="inout"`` marks a numpy array the function updates in place:
    in model mode the model's answer is written back into the caller's array.

    >>> Array((9, 9), direction="inout").size
    81
    """
    if isinstance(shape, int):
        shape = (shape,)
    return Variable(None, tuple(shape), np.dtype(dtype), direction, optic)


@dataclass(frozen=True)
class Spec:
    """The ordered variables of one function, with a stable hash.

    ``function`` is the wrapped function's ``module.qualname``.  Model inputs
    are the ``in`` and ``inout`` variables in order; model outputs are the
    ``out`` and ``inout`` variables in order.
    """

    function: str
    variables: tuple[Variable, ...]
    batched: bool = False

    def __post_init__(self) -> None:
        names = [v.name for v in self.variables]
        for n in names:
            if not n or not isinstance(n, str):
                raise SpecError(f"spec of {self.function}: every variable needs a name, got {n!r}")
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise SpecError(f"spec of {self.function}: duplicate variable names {sorted(map(str, dup))}")
        if not any(v.is_input for v in self.variables):
            raise SpecError(f"spec of {self.function}: no input variable")
        if not any(v.is_output for v in self.variables):
            raise SpecError(f"spec of {self.function}: no output variable")

    # -- construction -----------------------------------------------------

    @classmethod
    def from_declarations(
        cls,
        function: str,
        inputs: Mapping[str, Variable] | None = None,
        outputs: Mapping[str, Variable] | None = None,
        *,
        batched: bool = False,
    ) -> "Spec":
        """Build a spec from ``{name: Scalar()/Array(...)}`` declarations.

        Inputs default to the argument of the same name; an ``inout``
        declaration may sit in either mapping.  Outputs default to the return
        value: the whole value for a single output, else the tuple item in
        declaration order.
        """
        return cls(function, tuple(declare_variables(inputs, outputs)), batched)

    # -- views ------------------------------------------------------------

    @property
    def inputs(self) -> tuple[Variable, ...]:
        return tuple(v for v in self.variables if v.is_input)

    @property
    def outputs(self) -> tuple[Variable, ...]:
        return tuple(v for v in self.variables if v.is_output)

    @property
    def n_in_features(self) -> int:
        return sum(v.size for v in self.inputs)

    @property
    def n_out_features(self) -> int:
        return sum(v.size for v in self.outputs)

    def __getitem__(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(f"spec of {self.function} has no variable {name!r}; it has {[v.name for v in self.variables]}")

    # -- identity ---------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "batched": self.batched,
            "variables": [v.to_json() for v in self.variables],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Spec":
        try:
            return cls(
                function=str(d["function"]),
                variables=tuple(Variable.from_json(v) for v in d["variables"]),
                batched=bool(d.get("batched", False)),
            )
        except (KeyError, TypeError) as exc:
            raise SpecError(f"malformed spec record: {exc}") from None

    @property
    def hash(self) -> str:
        """Stable hash of what a model depends on: names, shapes, dtypes, directions.

        The function name, optics and metadata are left out on purpose: a
        model trained for ``mod.f`` serves a renamed ``mod.g`` with the same
        variables.
        """
        canon = [[v.name, list(v.shape), v.dtype.str, v.direction, v.ragged]
                 + ([v.size] if v.ragged and v.direction == "out" else [])  # max_len sets a ragged output's width
                 for v in self.variables]
        return hashlib.sha256(json.dumps(canon, separators=(",", ":")).encode()).hexdigest()[:16]

    def diff(self, other: "Spec") -> list[str]:
        """Human-readable differences, one line per differing variable."""
        lines = []
        mine = {v.name: v for v in self.variables}
        theirs = {v.name: v for v in other.variables}
        for name in mine.keys() | theirs.keys():
            a, b = mine.get(name), theirs.get(name)
            if a is None:
                assert b is not None
                lines.append(f"variable {name!r}: missing here, present as {b.describe()}")
            elif b is None:
                lines.append(f"variable {name!r}: present here as {a.describe()}, missing there")
            else:
                for attr in ("shape", "dtype", "direction", "ragged"):
                    if getattr(a, attr) != getattr(b, attr):
                        lines.append(
                            f"variable {name!r}: {attr} {getattr(a, attr)} here, {getattr(b, attr)} there"
                        )
        if not lines and [v.name for v in self.variables] != [v.name for v in other.variables]:
            lines.append(
                f"variable order differs: {[v.name for v in self.variables]} vs {[v.name for v in other.variables]}"
            )
        return sorted(lines)

    def check_compatible(self, other: "Spec", what: str) -> None:
        """Raise :class:`SpecError` if ``other`` (from ``what``) differs from this spec."""
        if self.hash == other.hash:
            return
        details = "; ".join(self.diff(other)) or "hash differs"
        raise SpecError(f"{what} does not match the spec of {self.function}: {details}")

    def describe(self) -> str:
        return "\n".join(v.describe() for v in self.variables)


def declare_variables(inputs: Mapping[str, Variable] | None, outputs: Mapping[str, Variable] | None) -> list[Variable]:
    """The variables of ``{name: declaration}`` mappings, named and bound as :meth:`Spec.from_declarations`
    binds them (inputs first); either mapping may be missing (a partial declaration)."""
    variables: list[Variable] = []
    for name, decl in (inputs or {}).items():
        decl = _as_variable(decl, name)
        if decl.direction == "out":
            raise SpecError(f"variable {name!r} is declared in inputs with direction 'out'; put it in outputs")
        variables.append(replace(decl, name=name, optic=decl.optic or Arg(name)))
    outs = []
    for n, d in (outputs or {}).items():
        d = _as_variable(d, n)
        # Declarations default to "in"; in outputs that means "out".
        outs.append((n, replace(d, direction="out") if d.direction == "in" else d))
    returned = [(n, d) for n, d in outs if d.direction == "out" and d.optic is None]
    for name, decl in outs:
        if decl.optic is None:
            if decl.direction == "inout":
                optic: Optic = Arg(name)
            elif len(returned) == 1:
                optic = Return()
            else:
                optic = Return([n for n, _ in returned].index(name))
        else:
            optic = decl.optic
        variables.append(replace(decl, name=name, optic=optic))
    return variables


def _as_variable(decl: Any, name: str) -> Variable:
    if isinstance(decl, Variable):
        return decl
    raise SpecError(
        f"variable {name!r}: expected a declaration such as phasm.Scalar() or phasm.Array(shape), "
        f"got {type(decl).__name__}"
    )


# -- packing: named per-variable arrays <-> one flat float matrix ---------


def pack(variables: Iterable[Variable], values: Mapping[str, np.ndarray], n: int, dtype: Any = np.float32) -> np.ndarray:
    """Concatenate per-variable arrays of shape ``(n, *shape)`` into ``(n, features)``."""
    variables = list(variables)
    out = np.empty((n, sum(v.size for v in variables)), dtype=dtype)
    col = 0
    for v in variables:
        if v.ragged:
            out[:, col : col + v.size] = _ragged_block(v, values[str(v.name)], n)
        else:
            out[:, col : col + v.size] = np.asarray(values[str(v.name)]).reshape(n, v.size)
        col += v.size
    return out


def _ragged_block(v: Variable, value: Any, n: int) -> np.ndarray:
    from phasm.bindings.ragged import ragged_block

    if v.is_input:
        raise SpecError(f"variable {v.name!r}: a variable-length input does not fit a flat row; models take RaggedInputs")
    try:
        return ragged_block(v, value, n)
    except ValueError as exc:
        raise SpecError(str(exc)) from None


def unpack(variables: Iterable[Variable], matrix: np.ndarray) -> dict[str, Any]:
    """Split ``(n, features)`` into per-variable arrays ``(n, *shape)`` cast to each dtype
    (a :class:`~phasm.bindings.ragged.RaggedArray` for a variable-length output)."""
    n = matrix.shape[0]
    out: dict[str, Any] = {}
    col = 0
    for v in variables:
        if v.ragged:  # a variable-length output: count + padded slots -> RaggedArray
            from phasm.bindings.ragged import ragged_unblock

            out[str(v.name)] = ragged_unblock(v, matrix[:, col : col + v.size])
            col += v.size
            continue
        block = matrix[:, col : col + v.size].reshape((n, *v.shape))
        if v.dtype.kind in "iub":
            block = np.rint(block)
        out[str(v.name)] = block.astype(v.dtype, copy=False)
        col += v.size
    return out
