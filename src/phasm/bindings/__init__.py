"""Bindings: specs (named, typed, shaped variables) and optics (where each lives in a call)."""

from phasm.bindings.optics import Arg, CallFrame, Optic, OpticError, Return
from phasm.bindings.spec import Array, Scalar, Spec, SpecError, Variable, pack, unpack
from phasm.bindings.paths import Global, Path, finish_frame  # noqa: E402  (registers optic kinds)
from phasm.bindings.each import Each  # noqa: E402
from phasm.bindings.ragged import RaggedArray, RaggedInputs  # noqa: E402
from phasm.bindings.declare import attr, each, fields, glob, item, setter  # noqa: E402

__all__ = [
    "Arg", "Array", "CallFrame", "Each", "Global", "Optic", "OpticError", "Path", "RaggedArray", "RaggedInputs",
    "Return", "Scalar", "Spec", "SpecError", "Variable", "attr", "each", "fields", "finish_frame", "glob", "item",
    "pack", "setter", "unpack",
]
