"""Training: standardisation, splits, streaming data, metrics, model artefacts."""

from phasm.errors import ArtefactError
from phasm.train.artefact import ModelArtefact
from phasm.train.data import ArrayData, Standardiser, StoreData, training_data
from phasm.train.exported import load_exported, load_onnx
from phasm.train.fit import TrainResult, fit_model
from phasm.train.inference import InferenceChoice, export_onnx
from phasm.train.metrics import output_metrics, per_call_relative_error

__all__ = [
    "ArrayData", "ArtefactError", "InferenceChoice", "ModelArtefact", "Standardiser", "StoreData", "TrainResult",
    "export_onnx", "fit_model", "load_exported", "load_onnx", "output_metrics", "per_call_relative_error",
    "training_data",
]
