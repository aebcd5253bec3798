"""Trust gates: decide, per row, whether the model's answer may be used."""

from phasm.gate.base import FiniteGate, Gate, finite_rows
from phasm.gate.calibrate import train_calibrated
from phasm.gate.certify import GroupReport
from phasm.gate.conformal import CalibrationReport, ConformalGate, clopper_pearson_upper
from phasm.gate.domain import DomainGate
from phasm.gate.ragged import RaggedConformalGate
from phasm.gate.range import RangeGate
from phasm.gate.regions import RegionPartition
from phasm.gate.registry import gate_from_json, gate_kinds, register_gate
from phasm.gate.tolerance import Tolerance

__all__ = [
    "CalibrationReport", "ConformalGate", "DomainGate", "FiniteGate", "Gate", "GroupReport", "RaggedConformalGate",
    "RangeGate", "RegionPartition", "Tolerance", "clopper_pearson_upper", "finite_rows", "gate_from_json",
    "gate_kinds", "register_gate", "train_calibrated",
]
