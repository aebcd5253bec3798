"""Bindings: specs (named, typed, shaped variables), optics (where each lives in a call), input layouts."""

from phasm.bindings.declare import attr, each, fields, glob, item, setter
from phasm.bindings.each import Each
from phasm.bindings.layout import FlatLayout, InputLayout, RaggedLayout, input_layout
from phasm.bindings.optics import Arg, CallFrame, Optic, Return
from phasm.bindings.paths import Global, Path, finish_frame
from phasm.bindings.ragged import RaggedArray, RaggedInputs
from phasm.bindings.spec import Array, Scalar, Spec, Variable, pack, unpack
from phasm.errors import OpticError, SpecError

__all__ = [
    "Arg", "Array", "CallFrame", "Each", "FlatLayout", "Global", "InputLayout", "Optic", "OpticError", "Path",
    "RaggedArray", "RaggedInputs", "RaggedLayout", "Return", "Scalar", "Spec", "SpecError", "Variable", "attr", "each",
    "fields", "finish_frame", "glob", "input_layout", "item", "pack", "setter", "unpack",
]
