"""Trust gates: decide, per row, whether the model's answer may be used."""

from phasm.gate.base import FiniteGate, Gate, finite_rows, gate_from_json

__all__ = ["FiniteGate", "Gate", "finite_rows", "gate_from_json"]
