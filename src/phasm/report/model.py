"""The report's data model: what each target provides, collected before anything is drawn.

Collectors (``collect_surrogate``, ``collect_profile``, ``live``) fill these records from model
folders, capture stores, ``phasm profile`` and ``phasm bench`` output folders, or a live
surrogate; section renderers (``sections/*.py``) read them and never open a file. Arrays are
numpy arrays, everything else plain Python values, so a renderer can be tested on hand-made data.

Example
-------
>>> d = ReportData(title="t", created="2025-01-01", phasm_version="0.1.0")
>>> (d.surrogates, d.profiles, d.costs)
([], [], [])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class SpecVariable:
    """One variable of the spec, as the spec table shows it."""

    name: str
    direction: str                 # in | out | inout
    shape: tuple[int, ...]
    dtype: str
    binding: str                   # where the call holds it: "argument f", "return value", ...
    ragged: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # further fields of its record (metadata, transforms)


@dataclass
class DataColumn:
    """One side of one variable in the store (``in:u`` and ``out:u`` for an inout ``u``)."""

    key: str                       # "in:f", "out:u"
    name: str
    role: str                      # "in" or "out"
    shape: tuple[int, ...]
    stats: dict[str, Any]          # count, nonfinite, min, max, mean, std (over every row of the store)
    sample: np.ndarray             # element values of the sampled rows (for the histogram)
    per_row: np.ndarray | None     # one value per sampled row: the value (scalar) or the row mean (array)
    per_row_label: str             # what per_row holds ("f", "mean of f over its 1024 elements")


@dataclass
class DataSummary:
    """What the capture store holds."""

    store: str
    n_rows: int
    n_files: int
    sampled_rows: int              # rows read for histograms and plots (all rows up to the sample limit)
    columns: list[DataColumn]


@dataclass
class TrainingData:
    """How the model was trained: backend, its parameters, the training record (losses, time)."""

    backend: str
    backend_version: str
    params: dict[str, Any]
    record: dict[str, Any]         # the artefact's training record: n_train, n_val, seconds, losses, ...
    created: str
    phasm_version: str


@dataclass
class OutputAccuracy:
    """The model against the captured answers for one output variable."""

    name: str
    size: int                      # elements per call
    true: np.ndarray               # element values (sampled) for the parity plot
    pred: np.ndarray
    rel_error: np.ndarray          # per-call relative L2 error (one per evaluated row)
    tolerance_rel: float | None    # the tolerance's relative limit for this output, if any
    tolerance_abs: float | None


@dataclass
class AccuracyData:
    """The model evaluated on captured rows."""

    rows_label: str                # which rows: "4000 rows of the store (the model trained on ...)"
    n_rows: int
    after_training: np.ndarray     # bool per evaluated row: captured after the model was trained
    outputs: list[OutputAccuracy]
    inputs: list[DataColumn]       # per-row input values (per_row) aligned with the evaluated rows
    constant_inputs: list[str]     # inputs constant over these rows (not plotted)


@dataclass
class GateCurve:
    """One threshold on the gate's score swept over evaluated rows."""

    thresholds: np.ndarray
    fallback_rate: np.ndarray
    miss_rate: np.ndarray          # among accepted rows (nan where none accepted)
    miss_upper: np.ndarray         # Clopper-Pearson upper bound at the gate's confidence
    accepted: np.ndarray


@dataclass
class GateData:
    """The trust gate: its certificate and what it does on the evaluated rows."""

    kind: str
    description: str
    report: dict[str, Any] | None  # the calibration report (certificate) stored with the model
    tolerance: dict[str, Any] | None
    rows_label: str = ""
    curve: GateCurve | None = None
    operating: dict[str, Any] | None = None  # fallback_rate, miss_rate, miss_upper, accepted, n_rows


@dataclass
class ReplayData:
    """Rows captured after training, replayed through the model and the gate, in capture order."""

    rows: np.ndarray               # row numbers in the store
    accepted: np.ndarray           # the gate trusts the model's answer now
    missed: np.ndarray | None      # the model's answer is beyond the tolerance (None: no tolerance)
    rel_error: np.ndarray          # largest per-call relative error over the outputs


@dataclass
class ProductionData:
    """How the surrogate did after training: live counters and/or replayed later captures."""

    counters: dict[str, Any] | None = None   # fn.stats of a live surrogate
    replay: ReplayData | None = None
    expected_fallback_rate: float | None = None
    miss_rate_bound: float | None = None
    max_miss_rate: float | None = None


@dataclass
class SurrogateData:
    """Everything known about one surrogate: a model folder, its store, or a live function."""

    name: str
    function: str
    spec_hash: str
    batched: bool
    variables: list[SpecVariable]
    model_path: str | None = None
    store_path: str | None = None
    data: DataSummary | None = None
    training: TrainingData | None = None
    metrics: dict[str, Any] = field(default_factory=dict)   # validation metrics per output (held-out rows)
    accuracy: AccuracyData | None = None
    gate: GateData | None = None
    production: ProductionData | None = None
    distribution: dict[str, Any] | None = None  # distribution metrics of a stochastic surrogate
    notes: list[str] = field(default_factory=list)


@dataclass
class ProfileData:
    """A ``phasm profile --out`` folder: flame graphs and ranked candidates."""

    path: str
    command: list[str]
    sampler: str
    rate_hz: float
    duration_s: float
    n_samples: int
    root: str | None
    speed: float
    totals: dict[str, float]
    candidates: list[dict[str, Any]]
    flames: dict[str, str]         # view ("on", "off") -> SVG text from phasm.profile's renderer
    notes: list[str] = field(default_factory=list)


@dataclass
class CostData:
    """A ``phasm bench --out`` folder: the measured cost model of one surrogate."""

    path: str
    function: str
    machine: str
    backend: str
    t_orig_s: float
    t_model_s: float
    t_gate_s: float
    fallback_rate: float
    rows_per_call: int
    n_measured: int
    s_eff: float
    model_curve: dict[int, float]  # batch size -> seconds per row (bare model)
    width_curves: dict[str, dict[str, dict[int, float]]]  # device -> width -> batch -> seconds per row
    p: float | None = None         # the function's share of the run, from a profile in the same report
    p_source: str = ""


@dataclass
class ReportData:
    """One report: its targets and what was collected from them."""

    title: str
    created: str
    phasm_version: str
    targets: list[tuple[str, str]] = field(default_factory=list)   # (path, kind)
    surrogates: list[SurrogateData] = field(default_factory=list)
    profiles: list[ProfileData] = field(default_factory=list)
    costs: list[CostData] = field(default_factory=list)
