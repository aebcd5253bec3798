"""Training: standardisation, splits, streaming data, metrics, model artefacts."""

from phasm.errors import ArtefactError
from phasm.train.artefact import ModelArtefact
from phasm.train.data import ArrayData, Standardiser, StoreData, training_data
from phasm.train.fit import TrainResult, fit_model
from phasm.train.metrics import output_metrics, per_call_relative_error

__all__ = [
    "ArrayData", "ArtefactError", "ModelArtefact", "Standardiser", "StoreData", "TrainResult",
    "fit_model", "output_metrics", "per_call_relative_error", "training_data",
]
