"""What a trust gate decides, read from its JSON record into the arrays the C gate is generated from.

Read from the gate JSON stored in the model folder (``phasm.json``, section ``"gate"``), through
:func:`phasm.gate.gate_from_json`, so the checks Python applies apply here too:

* ``kind``: ``"finite"`` (or no gate: only NaN/inf are refused), ``"range"`` (a
  :class:`~phasm.gate.RangeGate`, the default without a tolerance: the widened captured range
  only), ``"domain"`` (a
  :class:`~phasm.gate.DomainGate` alone) or ``"conformal"`` (a
  :class:`~phasm.gate.ConformalGate`; ``"ragged-conformal"`` and unknown kinds are refused);
* of the domain gate (``gate["domain"]`` for a conformal gate): ``low``/``high`` (the captured
  range already widened by the calibrated ``margin_``), ``metric_`` (``"knn"`` or
  ``"mahalanobis"``), ``mean``/``scale`` (its standardisation), ``radius``, and ``reference`` +
  ``k_`` (kNN) or ``precision`` (Mahalanobis);
* of the conformal gate: ``score_`` (the resolved score: ``spread``, ``residual``,
  ``spread+residual`` or ``distance``), ``threshold``, ``ref_error`` (residual scores: the model's
  error at each reference row), ``tolerance`` (``rel``, ``abs``, ``per_output``: the units of the
  spread score), the ``spec`` (output variables) and ``report`` (the certificate, printed in the
  header's comment).

Thresholds per region: a gate may hold one threshold per region of the input space.
:class:`Regions` carries it, either as the bin of one quantity (an input feature, the domain
distance, or the score itself) between ascending edges, or (``source="bands"``) as the nested bands
of a per-region certified gate (gate record format 2, :class:`~phasm.gate.RegionPartition`): from
``partition``, ``edge_features`` with ``edge_low``/``edge_high`` (``B`` nested boxes) and/or
``distance_cuts``, and ``thresholds`` (one per band, interior first):
``edge band = B - #{k : edge_low[k][i] <= x[edge_features[i]] <= edge_high[k][i] for every i}``,
``distance band = #{k : dist > distance_cuts[k]}``, the band the larger of the two.

Example
-------
>>> gate_plan(None, n_in=2, n_out=1).kind
'finite'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from phasm.errors import ExportError
from phasm.export.kdtree import KDTree, build_kdtree

SCORES = ("spread", "residual", "spread+residual", "distance")
REGION_SOURCES = ("input", "distance", "score", "bands")
EXPORTABLE_GATES = ("finite", "range", "domain", "conformal")


@dataclass
class Regions:
    """One threshold per region: ``thresholds[searchsorted(edges, value, side="right")]``.

    ``source``: ``"input"`` (``value`` is input feature ``index`` as the model sees it, float32),
    ``"distance"`` (the domain distance) or ``"score"`` (the gate's score).  ``edges`` ascending,
    ``len(thresholds) == len(edges) + 1``.
    """

    source: str
    edges: np.ndarray  # float64, ascending
    thresholds: np.ndarray  # float64 (len(edges) + 1,), or (B + 1,) for "bands"
    index: int = 0
    edge_features: np.ndarray | None = None  # "bands": int (F,)
    edge_low: np.ndarray | None = None  # "bands": float64 (B, F), nested boxes, outermost first
    edge_high: np.ndarray | None = None
    distance_cuts: np.ndarray | None = None  # "bands": float64 (B,)

    def __post_init__(self) -> None:
        self.edges = np.asarray(self.edges, np.float64).reshape(-1)
        self.thresholds = np.asarray(self.thresholds, np.float64).reshape(-1)
        if self.source not in REGION_SOURCES:
            raise ExportError(f"gate regions: source must be one of {REGION_SOURCES}, got {self.source!r}")
        if np.any(np.isnan(self.thresholds)):
            raise ExportError("gate regions: a threshold is NaN")
        if self.source == "bands":
            B = len(self.thresholds) - 1
            if self.edge_low is not None:
                self.edge_features = np.asarray(self.edge_features, np.int64).reshape(-1)
                F = len(self.edge_features)
                self.edge_low = np.asarray(self.edge_low, np.float64).reshape(B, F)
                self.edge_high = np.asarray(self.edge_high, np.float64).reshape(B, F)
            if self.distance_cuts is not None:
                self.distance_cuts = np.asarray(self.distance_cuts, np.float64).reshape(B)
            if B < 1 or (self.edge_low is None and self.distance_cuts is None):
                raise ExportError("gate regions: bands need edge boxes or distance cuts, and two thresholds or more")
            return
        if len(self.thresholds) != len(self.edges) + 1:
            raise ExportError(f"gate regions: expected {len(self.edges) + 1} thresholds for {len(self.edges)} edges, "
                              f"got {len(self.thresholds)}")
        if not np.all(np.isfinite(self.edges)) or np.any(np.diff(self.edges) <= 0):
            raise ExportError("gate regions: edges must be finite and strictly ascending")

    def region_of(self, value: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.edges, np.asarray(value, np.float64), side="right")


@dataclass
class OutputTolerance:
    """One output variable's allowed error: ``max(rel * ||y||, abs)`` over features ``[offset, offset + size)``."""

    name: str
    offset: int
    size: int
    rel: float | None
    abs: float | None


@dataclass
class GatePlan:
    """Everything the generated gate needs (see the module docstring)."""

    kind: str  # "finite" | "range" | "domain" | "conformal"
    low: np.ndarray | None = None  # float32 range, rounded outwards (Python compares float32 rows to it)
    high: np.ndarray | None = None
    metric: str | None = None  # "knn" | "mahalanobis"
    mean: np.ndarray | None = None  # float64 (kNN standardisation)
    scale: np.ndarray | None = None
    mean32: np.ndarray | None = None  # float32 (Mahalanobis standardisation, as Python's float32 path)
    inv_scale32: np.ndarray | None = None
    radius: float = float("inf")
    k: int = 0
    tree: KDTree | None = None
    ref_error: np.ndarray | None = None  # float32 per tree leaf slot (leaves, leaf_size), 0 for padding
    precision: np.ndarray | None = None  # float32 (n, n) or (n,) diagonal
    score: str = ""  # "" for a domain-only gate
    tolerances: list[OutputTolerance] = field(default_factory=list)
    regions: Regions | None = None
    threshold: float = float("inf")  # the single threshold when regions is None
    certificate: str = ""
    tolerance_text: str = ""
    margin: float | None = None
    description: str = "finite inputs and outputs"

    @property
    def needs_members(self) -> bool:
        return "spread" in self.score

    @property
    def needs_neighbours(self) -> bool:
        return "residual" in self.score

    @property
    def domain(self) -> bool:
        """A distance check to the training inputs (a domain gate's, alone or in a conformal gate)."""
        return self.kind in ("domain", "conformal")

    @property
    def in_range(self) -> bool:
        """A check of every input against the captured (widened) range."""
        return self.kind in ("range", "domain", "conformal")


def gate_plan(record: dict[str, Any] | None, *, n_in: int, n_out: int, spec: Any = None,
              ensemble: bool = False) -> GatePlan:
    """The :class:`GatePlan` of a gate JSON record (``None``: the finite gate)."""
    from phasm.gate import ConformalGate, DomainGate, FiniteGate, RangeGate, gate_from_json

    kind = record.get("kind") if isinstance(record, dict) else None
    if record and kind not in EXPORTABLE_GATES:
        raise ExportError(f"not exportable: gate kind {kind!r}; exportable: {', '.join(EXPORTABLE_GATES)}")
    try:
        gate = gate_from_json(record)
    except (ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"the model's gate record cannot be read: {exc}") from None
    if type(gate) is FiniteGate:
        return GatePlan("finite")
    if isinstance(gate, ConformalGate):
        plan = _domain_plan(gate.domain, n_in)
        plan.kind = "conformal"
        score = gate.score_
        if score not in SCORES:
            raise ExportError(f"not exportable: gate score {score!r}; exportable scores: {', '.join(SCORES)}")
        if "spread" in score and not ensemble:
            raise ExportError(f"not exportable: gate score {score!r} needs a native predictive std (a Gaussian process)")
        plan.score = score
        plan.threshold = float(gate.threshold_)
        if "residual" in score:
            if plan.metric != "knn":
                raise ExportError("gate record: a residual score needs a kNN domain")
            err = np.asarray(gate.ref_error_, np.float32)
            rows = plan.tree.rows  # type: ignore[union-attr]
            plan.ref_error = np.where(rows >= 0, err[np.maximum(rows, 0)], np.float32(0))
        out_spec = spec if spec is not None else gate._spec
        plan.tolerances = _tolerances(gate.tolerance, out_spec, n_out)
        plan.tolerance_text = _tolerance_text(gate.tolerance)
        plan.certificate = str(gate.report_)
        plan.description = gate.domain.describe()
        plan.regions = _regions(gate)
        return plan
    if isinstance(gate, DomainGate):
        plan = _domain_plan(gate, n_in)
        plan.description = gate.describe()
        return plan
    if isinstance(gate, RangeGate):
        plan = GatePlan("range", description=gate.describe())
        plan.low, plan.high = _bounds32(gate, n_in, "range")
        plan.margin = gate.margin_
        return plan
    raise ExportError(f"not exportable: gate kind {getattr(gate, 'kind', type(gate).__name__)!r}; "
                      f"exportable: {', '.join(EXPORTABLE_GATES)}")


def _bounds32(gate: Any, n_in: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The gate's float64 range as float32 bounds rounded outwards, as Python compares float32 rows with it."""
    low = np.asarray(gate.low_, np.float64)
    if low.shape != (n_in,):
        raise ExportError(f"gate record: the {what} gate has {low.shape[0]} input features, the model {n_in}")
    return (np.nextafter(low.astype(np.float32), np.float32(-np.inf)),
            np.nextafter(np.asarray(gate.high_, np.float64).astype(np.float32), np.float32(np.inf)))


def _regions(gate: Any) -> Regions | None:
    """The per-region thresholds of a conformal gate (``None``: one region, ``plan.threshold``)."""
    part = gate.regions_
    if part.kind == "none" or len(gate.thresholds_) == 1:
        return None
    return Regions("bands", edges=np.zeros(0), thresholds=gate.thresholds_, edge_features=part.edge_features_,
                   edge_low=part.edge_low_, edge_high=part.edge_high_, distance_cuts=part.distance_cuts_)


def _domain_plan(domain: Any, n_in: int) -> GatePlan:
    if not hasattr(domain, "low_"):
        raise ExportError("the model's domain gate is not fitted")
    plan = GatePlan("domain")
    # Python compares float32 model rows with float32 bounds rounded outwards; so does the C gate.
    plan.low, plan.high = _bounds32(domain, n_in, "domain")
    plan.metric = domain.metric_
    plan.radius = float(domain.radius_)
    plan.margin = getattr(domain, "margin_", None)
    plan.mean = np.asarray(domain.mean_, np.float64)
    plan.scale = np.asarray(domain.scale_, np.float64)
    plan.mean32 = plan.mean.astype(np.float32)
    plan.inv_scale32 = (1.0 / plan.scale).astype(np.float32)
    if plan.metric == "knn":
        ref = np.asarray(domain.reference_, np.float32)
        plan.k = int(domain.k_)
        if not 1 <= plan.k <= len(ref):
            raise ExportError(f"gate record: k={plan.k} neighbours of {len(ref)} reference rows")
        plan.tree = build_kdtree(ref)
    elif plan.metric == "mahalanobis":
        plan.precision = np.asarray(domain.precision_, np.float32)
        if plan.precision.shape not in ((n_in,), (n_in, n_in)):
            raise ExportError(f"gate record: precision has shape {plan.precision.shape}, expected ({n_in},) or ({n_in}, {n_in})")
    else:
        raise ExportError(f"not exportable: domain metric {plan.metric!r}")
    return plan


def _tolerances(tolerance: Any, spec: Any, n_out: int) -> list[OutputTolerance]:
    out, col = [], 0
    for v in spec.outputs:
        rel, mabs = tolerance.limits(v.name)
        out.append(OutputTolerance(v.name, col, v.size, rel, mabs))
        col += v.size
    if col != n_out:
        raise ExportError(f"gate record: its spec has {col} output features, the model {n_out}")
    return out


def _tolerance_text(tol: Any) -> str:
    def limit(v: Any) -> str:  # a number for every output, or {output: number}
        return f"{v:g}" if not isinstance(v, dict) else "{" + ", ".join(f"{k}: {x:g}" for k, x in sorted(v.items())) + "}"

    parts = []
    if tol.rel is not None:
        parts.append(f"relative L2 error <= {limit(tol.rel)}")
    if tol.abs is not None:
        parts.append(f"largest absolute error <= {limit(tol.abs)}")
    text = " or ".join(parts) or "per output"
    for name, (r, a) in sorted(tol.per_output.items()):
        text += f"; {name}: rel {r}, abs {a}"
    return f"{text} per output variable; at most {tol.max_miss_rate:.2%} of trusted calls beyond it"
