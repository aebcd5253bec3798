"""Partial declarations: declare only the variables that need declaring; the first call infers the rest.

``@phasm.surrogate(inputs=...)`` without ``outputs=``, or ``outputs=...`` without ``inputs=``, is a
partial declaration (giving both is a complete one: exactly the variables listed).  The declared
variables keep their optics (a set of hits through ``phasm.each``, a field of an object, a global);
at the first call:

* every argument that no declared variable reads from (is not the root of a declared optic), and
  that holds numbers, becomes an input variable named after it, as for an undeclared function
  (``self`` and ``cls`` are skipped; an argument holding an object phasm cannot read is an error
  that says to declare it); arrays the call changed in place become ``inout``;
* without declared outputs, the return value gives the outputs (a scalar, an array, a tuple or dict
  of them, a dataclass), as for an undeclared function.

Inputs are ordered as the function's parameters (declared variables at the argument they read; those
reading no argument, such as globals, after them), outputs declared first.  A spec read from a file
(a store, a model folder) is bound the same way: declared variables by the code, the others by name
(:func:`~phasm.bindings.infer.bind_by_signature`).

Example
-------
>>> from phasm.bindings.optics import CallFrame
>>> from phasm.bindings.spec import Scalar, declare_variables
>>> partial = PartialDeclaration("m.f", declare_variables({"P": Scalar()}, None), infer_outputs=True)
>>> spec = partial.complete(CallFrame({"T": 1200.0, "phi": 1.0, "P": 5.0}, 1e-3), set())
>>> [v.describe() for v in spec.variables]
['T [in] scalar float64', 'phi [in] scalar float64', 'P [in] scalar float64', 'result [out] scalar float64']
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Sequence

from phasm.bindings.infer import bind_by_signature, describe_value, infer_variables
from phasm.bindings.optics import CallFrame, OpticError
from phasm.bindings.spec import Spec, Variable
from phasm.errors import SpecError

__all__ = ["PartialDeclaration"]

SKIPPED = ("self", "cls")


class PartialDeclaration:
    """Declared ``variables`` of ``function`` that are not a whole spec (see the module docstring).

    ``infer_outputs``: the outputs come from the first call's return value (no output was declared).
    """

    def __init__(self, function: str, variables: Sequence[Variable], *, infer_outputs: bool, batched: bool = False) -> None:
        self.function = function
        self.variables = tuple(variables)
        self.infer_outputs = bool(infer_outputs)
        self.batched = bool(batched)
        self.roots = {v.optic.root_argument for v in self.variables if v.optic is not None} - {None}

    def describe(self) -> str:
        names = ", ".join(str(v.name) for v in self.variables)
        rest = "the other arguments and the return value" if self.infer_outputs else "the other arguments"
        return f"declared {names}; {rest} inferred from the first call"

    def complete(self, frame: CallFrame, mutated: set[str], *, skip: Iterable[str] = ()) -> Spec:
        """The spec of a finished first call: the declared variables and the ones inferred from it
        (``skip``: arguments that are never model inputs)."""
        declared = [self._resolved(v, frame) for v in self.variables]
        taken = {str(v.name) for v in declared}
        skipped = {str(r) for r in self.roots} | {a for a in SKIPPED if a in frame.args} | set(skip)
        try:
            inferred = infer_variables(frame, mutated=mutated - skipped, batched=self.batched, skip=skipped, taken=taken,
                                       outputs=self.infer_outputs)
        except SpecError as exc:
            raise SpecError(f"{self.function}: {exc} (the declaration is partial: {self.describe()}; declare this "
                            "variable too, or give both inputs= and outputs= to list every variable)") from None
        clash = {str(v.name) for v in inferred if v.is_input} & taken
        if clash:
            raise SpecError(f"{self.function}: argument(s) {sorted(clash)} share a name with a declared variable; "
                            "rename the declared variable")
        by_arg: dict[str, list[Variable]] = {}
        for v in inferred:
            if v.is_input:
                by_arg.setdefault(str(v.optic.root_argument if v.optic is not None else v.name), []).append(v)
        for v in declared:
            if v.is_input:
                by_arg.setdefault(str(v.optic.root_argument) if v.optic is not None and v.optic.root_argument else "",
                                  []).append(v)
        inputs: list[Variable] = []
        for arg in frame.args:
            inputs.extend(by_arg.pop(arg, []))
        for rest in by_arg.values():  # declared variables that read no argument (globals), in declaration order
            inputs.extend(rest)
        outputs = [v for v in declared if v.direction == "out"] + [v for v in inferred if v.direction == "out"]
        return Spec(self.function, (*inputs, *outputs), self.batched)

    def _resolved(self, v: Variable, frame: CallFrame) -> Variable:
        """A declared variable whose shape or dtype is left to the first call, filled in from it."""
        infer = v.meta.get("infer")
        if not infer:
            return v
        try:
            value = v.optic.get(frame)  # type: ignore[union-attr]
        except OpticError as exc:
            raise SpecError(f"{self.function}: variable {v.name!r}: {exc}") from None
        import numpy as np

        if isinstance(value, (list, tuple)):
            value = np.asarray(value)
        shape, dtype = describe_value(str(v.name), value, batched=self.batched, what="variable")
        meta = {k: x for k, x in v.meta.items() if k != "infer"}
        return replace(v, shape=shape if "shape" in infer else v.shape, dtype=dtype if "dtype" in infer else v.dtype,
                       meta=meta)

    def bind_stored(self, stored: Spec, params: Sequence[str], what: str) -> Spec:
        """This function's spec for one read from a file: declared variables from the code, the others by name."""
        names = {str(v.name) for v in stored.variables}
        for v in self.variables:
            if v.name not in names:
                raise SpecError(f"{what} has no variable {v.name!r}, which {self.function} declares")
        return bind_by_signature(stored, params, function=self.function, batched=self.batched, what=what,
                                 declared=self.variables)
