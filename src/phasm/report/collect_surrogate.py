"""Collect what is known about one surrogate: its model (folder or live), its store, its gate, its counters.

The model is read through the public artefact API (:class:`~phasm.train.ModelArtefact`), the store
through :class:`~phasm.store.CaptureStore`. A model whose backend library is missing still gives
its spec, training record, metrics and certificate (from ``phasm.json``); the plots that need
predictions say what is missing.

Example
-------
>>> binding_text({"kind": "arg", "name": "f"}), binding_text({"kind": "return", "key": None})
('argument f', 'return value')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from phasm.bindings.spec import Spec
from phasm.errors import ArtefactError, BackendError, GateError, ReportError, SpecError
from phasm.gate import ConformalGate, finite_rows, gate_from_json
from phasm.report import evaluate
from phasm.report.model import GateData, ProductionData, SpecVariable, SurrogateData, TrainingData
from phasm.report.sample import Rows, has_ragged, read_rows, summarize, take
from phasm.store.reader import CaptureStore
from phasm.train.artefact import ModelArtefact

MIN_AFTER_ROWS = 100  # later captures needed to draw the gate's curve on them alone


@dataclass
class ModelInfo:
    """A model's record, from a loaded artefact or (backend missing) from its ``phasm.json`` alone."""

    spec: Spec
    path: str | None
    backend: str
    backend_version: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    training: dict[str, Any]
    sections: dict[str, Any]
    created: str
    phasm_version: str
    model: Any = None              # the artefact, when its backend could load it
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_artefact(cls, art: Any, meta: dict[str, Any] | None = None) -> "ModelInfo":
        meta = meta or {}
        return cls(spec=art.spec, path=str(art.path) if art.path is not None else None, backend=art.backend.name,
                   backend_version=str(meta.get("backend", {}).get("version") or art.backend.library_version()),
                   params=dict(art.backend.get_params()), metrics=dict(art.metrics or {}),
                   training=dict(art.training or {}), sections=dict(art.sections or {}), created=str(art.created),
                   phasm_version=str(meta.get("phasm_version", "")), model=art)

    @classmethod
    def load(cls, path: Path) -> "ModelInfo":
        """Load a model folder; refuses a corrupted or altered one, degrades to metadata without its backend."""
        try:
            meta = ModelArtefact.read_metadata(path)
        except ArtefactError as exc:
            raise ReportError(f"model folder {path}: {exc}") from None
        try:
            return cls.from_artefact(ModelArtefact.load(path), meta)
        except ArtefactError as exc:
            raise ReportError(f"model folder {path}: {exc}") from None
        except BackendError as exc:  # e.g. torch not installed here: report what phasm.json says
            note = f"the model's backend could not be loaded here ({exc}); plots that need its predictions are left out"
        try:
            spec = Spec.from_json(meta["spec"])
        except SpecError as exc:
            raise ReportError(f"model folder {path}: {exc}") from None
        backend = meta.get("backend", {})
        known = {"format", "format_version", "phasm_version", "created", "spec", "spec_hash", "backend",
                 "normalisation", "files", "metrics", "training"}
        return cls(spec=spec, path=str(path), backend=str(backend.get("name", "?")),
                   backend_version=str(backend.get("version", "")), params=dict(backend.get("params", {})),
                   metrics=dict(meta.get("metrics") or {}), training=dict(meta.get("training") or {}),
                   sections={k: v for k, v in meta.items() if k not in known}, created=str(meta.get("created", "")),
                   phasm_version=str(meta.get("phasm_version", "")), notes=[note])


def binding_text(record: dict[str, Any] | None) -> str:
    """Where a variable lives in a call, from its optic record (data only: nothing is resolved)."""
    if not record:
        return "-"
    kind = record.get("kind")
    if kind == "arg":
        return f"argument {record.get('name')}"
    if kind == "return":
        key = record.get("key")
        return "return value" if key is None else f"return value [{key!r}]"
    rest = ", ".join(f"{k}={v}" for k, v in record.items() if k != "kind" and v is not None)
    return f"{kind}({rest})" if rest else str(kind)


def spec_variables(spec: Spec) -> list[SpecVariable]:
    out = []
    for v in spec.variables:
        record = v.to_json()
        extra = {k: val for k, val in record.items() if k not in ("name", "shape", "dtype", "direction", "optic", "ragged")}
        out.append(SpecVariable(name=str(v.name), direction=v.direction, shape=tuple(v.shape), dtype=str(np.dtype(v.dtype)),
                                binding=binding_text(record.get("optic")), ragged=bool(v.ragged), extra=extra))
    return out


def recorded_rows(record: dict[str, Any]) -> int:
    """Finite rows the model was trained, validated and calibrated on, by its training record (0: not recorded)."""
    return sum(int(record.get(k) or 0) for k in ("n_train", "n_val", "calibration_rows", "dropped_nonfinite"))


def training_boundary(store: CaptureStore, target: int, batch: int = 65536) -> int:
    """The row just past the ``target``-th row of the store whose inputs and outputs are all finite.

    Training leaves non-finite rows out (before counting them, or counting them as dropped), and a
    store only grows, so every finite row from there on was captured after the model was trained.
    Returns ``len(store) + 1`` when the store holds fewer such rows: not the model's training store.
    """
    seen = 0
    for start in range(0, len(store), batch):
        X, Y = store.matrices(start, start + batch, dtype=np.float64)
        count = np.cumsum(finite_rows(X) & finite_rows(Y))
        if len(count) and seen + int(count[-1]) >= target:
            return start + int(np.searchsorted(count, target - seen)) + 1
        seen += int(count[-1]) if len(count) else 0
    return len(store) + 1


def rows_label(n_eval: int, n_store: int, boundary: int, store: str) -> str:
    what = f"all {n_store}" if n_eval == n_store else f"{n_eval} of the {n_store}"
    if boundary == 0:
        return f"{what} rows of {store} (the model's record does not say how many it trained on)"
    if boundary > n_store:
        return (f"{what} rows of {store}, which holds fewer finite rows than the model trained on: "
                "not its training store, or only a part of it")
    after = n_store - boundary
    return (f"{what} rows of {store}: its first {boundary} rows are those the model was trained, validated and "
            f"calibrated on (errors there flatter it); {after} row{'s' if after != 1 else ''} captured after training")


def collect_surrogate(info: ModelInfo | None, store: CaptureStore | None, *, gate: Any = None, tolerance: Any = None,
                      counters: dict[str, Any] | None = None, name: str | None = None, max_rows: int = 20000) -> SurrogateData:
    """Everything the report shows about one surrogate; ``gate``/``tolerance``/``counters`` from a live one."""
    spec = info.spec if info is not None else (store.spec if store is not None else None)
    if spec is None:
        raise ReportError("a surrogate needs a model or a capture store")
    d = SurrogateData(name=name or spec.function, function=spec.function, spec_hash=spec.hash, batched=spec.batched,
                      variables=spec_variables(spec), model_path=info.path if info else None,
                      store_path=str(store.path) if store is not None else None)
    rows = None
    if store is not None:
        rows = read_rows(store, max_rows)
        d.data = summarize(store, rows)
    if info is None:
        d.notes.append("no model: pass its model folder to see training, accuracy and the trust gate")
        return d
    d.notes += info.notes
    d.training = TrainingData(backend=info.backend, backend_version=info.backend_version, params=info.params,
                              record=info.training, created=info.created, phasm_version=info.phasm_version)
    d.metrics = {k: v for k, v in info.metrics.items() if isinstance(v, dict)}
    distribution = info.sections.get("distribution")
    d.distribution = distribution if isinstance(distribution, dict) else None
    if gate is None:
        try:
            gate = gate_from_json(info.sections.get("gate"))
        except (GateError, ValueError, KeyError, TypeError) as exc:
            raise ReportError(f"model {info.path}: its gate record cannot be read: {exc}") from None
    if isinstance(gate, ConformalGate):
        tolerance = gate.tolerance
    report = getattr(gate, "report_", None)
    d.gate = GateData(kind=str(getattr(gate, "kind", type(gate).__name__)), description=gate.describe(),
                      report=report.to_json() if report is not None else None,
                      tolerance=tolerance.to_json() if tolerance is not None else None)
    d.production = ProductionData(counters=counters)
    if report is not None:
        d.production.expected_fallback_rate = report.expected_fallback_rate
        d.production.miss_rate_bound = report.miss_rate_bound if report.certified else None
        d.production.max_miss_rate = report.max_miss_rate
    if store is None or rows is None:
        d.notes.append("no capture store: pass the model's store to see its data, accuracy plots and the gate on real rows")
        return d
    if info.model is None or has_ragged(spec) or len(rows) == 0:
        if has_ragged(spec):
            d.notes.append("variable-length variables: accuracy and gate plots are drawn for fixed-shape specs only")
        return d
    _evaluate(d, info, store, rows, gate, tolerance, max_rows)
    return d


def _evaluate(d: SurrogateData, info: ModelInfo, store: CaptureStore, rows: Rows, gate: Any, tolerance: Any,
              max_rows: int) -> None:
    spec, model = info.spec, info.model
    n_store = len(store)
    target = recorded_rows(info.training)
    boundary = training_boundary(store, target) if target else 0
    confidence = float((d.gate.report or {}).get("confidence", 0.95)) if d.gate else 0.95
    X, Y = evaluate.matrices(spec, rows)
    finite = finite_rows(X) & finite_rows(Y)  # as in training: rows with NaN/inf are left out
    rows, X, Y = take(rows, finite), X[finite], Y[finite]
    if not len(rows):
        d.notes.append("no row of the store has finite inputs and outputs: nothing to evaluate the model on")
        return
    P = evaluate.predict(model, X)
    after = (rows.rows >= boundary) if 0 < boundary <= n_store else np.zeros(len(rows), bool)
    label = rows_label(len(rows), n_store, boundary, str(store.path))
    if not finite.all():
        label += f"; {int((~finite).sum())} sampled rows with non-finite values left out, as in training"
    d.accuracy = evaluate.accuracy(spec, rows, Y, P, after, tolerance, label)
    # The gate on later captures alone when there are enough of them, else on every evaluated row.
    sel = after if after.sum() >= MIN_AFTER_ROWS else np.ones(len(rows), bool)
    assert d.gate is not None
    d.gate.rows_label = (f"the {int(sel.sum())} evaluated rows captured after training" if sel is after else label)
    Xs, Ys, Ps = X[sel], Y[sel], P[sel]
    missed = tolerance.misses(spec, Ys, Ps) if tolerance is not None else None
    d.gate.operating = evaluate.operating_point(evaluate.accepted_rows(gate, model, Xs, Ps), missed, confidence)
    scored = evaluate.gate_scores(gate, model, Xs)
    if scored is not None and tolerance is not None:
        Yg, score = scored
        d.gate.curve = evaluate.threshold_curve(score, tolerance.misses(spec, Ys, Yg), confidence)
    if 0 < boundary < n_store:
        later = read_rows(store, max_rows, start=boundary)
        Xl, Yl = evaluate.matrices(spec, later)
        ok = finite_rows(Xl) & finite_rows(Yl)
        later, Xl, Yl = take(later, ok), Xl[ok], Yl[ok]
        if len(later):
            Pl = evaluate.predict(model, Xl)
            acc = evaluate.accepted_rows(gate, model, Xl, Pl)
            missed_l = tolerance.misses(spec, Yl, Pl) if tolerance is not None else None
            assert d.production is not None
            d.production.replay = evaluate.replay(spec, later, Yl, Pl, acc, missed_l)
