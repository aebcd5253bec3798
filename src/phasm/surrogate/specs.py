"""Where a surrogate's spec comes from: the code that declares it, or the function's first call.

* Declared (``inputs=`` and ``outputs=``): the spec, optics included, is the declaration.
  Declarations may leave shapes or dtypes to be inferred (``shape=None``); those come
  from the first call, or from a stored spec.
* Partly declared (``inputs=`` or ``outputs=`` alone): the declared variables, and the rest
  inferred from the first call (:mod:`phasm.bindings.partial`).
* Undeclared: the spec is inferred from the first call (names from the signature,
  shapes and dtypes from the values).

A spec read from a file (a capture store, a model folder) never brings bindings:
it is checked against the declarations (names, shapes, dtypes, directions), or,
for an undeclared function, bound by the function's signature alone
(:func:`phasm.bindings.infer.bind_by_signature`).

Example
-------
>>> from phasm.bindings.spec import Scalar
>>> specs = SpecSource("m.f", ("x",), batched=False, inputs={"x": Scalar()}, outputs={"y": Scalar()})
>>> [v.where for v in specs.declared.variables]
['arg(x)', 'return']
"""

from __future__ import annotations

from typing import Mapping

from phasm.bindings.infer import bind_by_signature, infer_spec, needs_inference, resolve_inferred
from phasm.bindings.optics import CallFrame
from phasm.bindings.partial import PartialDeclaration
from phasm.bindings.spec import Spec, Variable, declare_variables

__all__ = ["SpecSource"]


class SpecSource:
    """The declarations of one surrogate, and how a spec is derived from a call or checked against a file.

    ``declared``: the complete declared spec; ``partial``: a declaration that leaves shapes or
    dtypes to be inferred; ``open``: a declaration of some variables only (inputs or outputs alone),
    the rest inferred; all ``None`` for an undeclared function.
    """

    def __init__(self, name: str, params: tuple[str, ...], *, batched: bool,
                 inputs: Mapping[str, Variable] | None = None, outputs: Mapping[str, Variable] | None = None,
                 skip: tuple[str, ...] = ()) -> None:
        self.name = name
        self.params = params
        self.batched = batched
        self.skip = skip  # arguments that are never model inputs (a stochastic function's random generator)
        self.declared: Spec | None = None
        self.partial: Spec | None = None
        self.open: PartialDeclaration | None = None
        if bool(inputs) != bool(outputs):  # one side declared: the first call infers the rest
            self.open = PartialDeclaration(name, declare_variables(inputs, outputs), infer_outputs=not outputs,
                                           batched=batched)
        elif inputs is not None or outputs is not None:
            spec = Spec.from_declarations(name, inputs, outputs, batched=batched)
            if needs_inference(spec):
                self.partial = spec
            else:
                self.declared = spec

    def from_call(self, frame: CallFrame, mutated: set[str]) -> Spec:
        """The spec of a finished first call (its arguments and return value in ``frame``)."""
        if self.declared is not None:
            return self.declared
        if self.partial is not None:
            return resolve_inferred(self.partial, frame=frame)
        if self.open is not None:
            return self.open.complete(frame, mutated, skip=self.skip)
        return infer_spec(self.name, frame, mutated=mutated, batched=self.batched, skip=self.skip)

    def from_file(self, stored: Spec, what: str) -> Spec:
        """This function's spec for one read from ``what`` (a store, a model), with bindings from the code only.

        Raises :class:`~phasm.errors.SpecError` naming the differing variable when they do not match.
        """
        if self.declared is not None:
            spec = self.declared
        elif self.partial is not None:
            spec = resolve_inferred(self.partial, template=stored)
        else:
            params = tuple(p for p in self.params if p not in self.skip)
            if self.open is not None:
                spec = self.open.bind_stored(stored, params, what)
            else:
                spec = bind_by_signature(stored, params, function=self.name, batched=self.batched, what=what)
        spec.check_compatible(stored, what)
        return spec
