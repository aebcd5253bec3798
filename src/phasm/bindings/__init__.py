"""Bindings: specs (named, typed, shaped variables) and optics (where each lives in a call)."""

from phasm.bindings.optics import Arg, CallFrame, Optic, OpticError, Return
from phasm.bindings.spec import Array, Scalar, Spec, SpecError, Variable, pack, unpack

__all__ = [
    "Arg", "Array", "CallFrame", "Optic", "OpticError", "Return", "Scalar", "Spec", "SpecError",
    "Variable", "pack", "unpack",
]
