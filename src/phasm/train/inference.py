"""Which engine answers a model's ``predict``: its own backend, or onnxruntime when that is faster here.

When a model is loaded or trained, :func:`choose_inference` converts a CPU torch
network (MLP, skip MLP, ensemble of them) to an ONNX graph with the
standardisation folded in, times both engines on a few calls at batch 1 and
batch 1024 (interleaved, best of each; a few milliseconds), checks that they
agree, and keeps onnxruntime when the geometric mean of its two time ratios is
below 1.  One engine serves every batch size, so a row gets the same answer
whatever batch it arrives in.  The choice (and the timings) is
``art.inference``; ``fn.train()`` prints it; ``PHASM_ENGINE=torch|onnx|auto``
(or ``art.use_engine(...)``) forces it.

Example
-------
>>> import numpy as np, phasm
>>> from phasm.train import fit_model
>>> spec = phasm.Spec.from_declarations("m.f", {"x": phasm.Scalar()}, {"y": phasm.Scalar()})
>>> X = np.linspace(-2, 2, 200)[:, None]
>>> art, _ = fit_model((X, np.sin(X)), spec, backend="torch", hidden=(16,), epochs=2)
>>> art.use_engine("onnx").engine
'onnx'
>>> y_onnx = art.predict(X[:3])
>>> art.use_engine("torch").engine
'torch'
>>> bool(np.allclose(art.predict(X[:3]), y_onnx, atol=1e-5))
True
"""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from phasm.errors import BackendError

ENGINE_ENV = "PHASM_ENGINE"
ENGINES = ("auto", "torch", "onnx")
PROBE_BATCHES = (1, 1024)
BUDGET_S = 0.010  # time for the measurement itself (conversion and session creation come on top)
MIN_ROUNDS, MAX_ROUNDS = 3, 50
CLEAR_WIN = 5.0  # one engine this many times faster after a round: stop measuring that batch size
_CHOSEN: dict[str, "InferenceChoice"] = {}  # manifest digest -> the choice measured at its first load in this process
AGREEMENT = 1e-3  # largest |onnx - native| accepted, relative to the output's scale (float32 differences are ~1e-6)


@dataclass
class InferenceChoice:
    """The engine chosen for a model, why, and what was measured (microseconds per call)."""

    engine: str
    reason: str
    timings_us: dict[str, dict[int, float]] = field(default_factory=dict)
    seconds: float = 0.0  # converting, building the session and measuring
    import_seconds: float = 0.0  # importing onnx and onnxruntime, when this choice was the first to need them

    def to_json(self) -> dict[str, Any]:
        return {"engine": self.engine, "reason": self.reason, "seconds": self.seconds,
                "import_seconds": self.import_seconds,
                "timings_us": {k: {str(b): t for b, t in v.items()} for k, v in self.timings_us.items()}}

    def summary(self) -> str:
        """One line, e.g. ``inference: onnx (batch 1: 4.3 us vs torch 11.2 us; ...)``."""
        parts = []
        others = [k for k in self.timings_us if k != self.engine]
        for b in PROBE_BATCHES:
            if self.engine in self.timings_us and b in self.timings_us[self.engine]:
                vs = "".join(f" vs {o} {self.timings_us[o][b]:.1f} us" for o in others if b in self.timings_us[o])
                parts.append(f"batch {b}: {self.timings_us[self.engine][b]:.1f} us{vs}")
        detail = f" ({'; '.join(parts)})" if parts else ""
        imports = f"; importing onnx and onnxruntime: {self.import_seconds:.1f} s" if self.import_seconds >= 0.05 else ""
        return f"inference: {self.engine}{detail}: {self.reason} [chosen in {self.seconds * 1e3:.0f} ms{imports}]"


@dataclass
class InferencePlan:
    """What ``ModelArtefact.predict`` calls: raw rows -> raw outputs, and the members for ensembles."""

    predict: Callable[[np.ndarray], np.ndarray]
    members: Callable[[np.ndarray], np.ndarray] | None
    choice: InferenceChoice
    #: ``f(X, out)``: the answers written into the caller's float32 ``(n, n_out)`` buffer (``None``: not offered)
    predict_into: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None


def engine_setting(engine: str | None = None) -> str:
    """``engine`` or ``$PHASM_ENGINE`` (default ``auto``), checked."""
    value = engine if engine is not None else os.environ.get(ENGINE_ENV, "auto") or "auto"
    if value not in ENGINES:
        source = "engine" if engine is not None else f"${ENGINE_ENV}"
        raise BackendError(f"{source} must be one of {', '.join(ENGINES)}, got {value!r}")
    return value


def onnx_available() -> bool:
    """Whether onnxruntime and onnx can be imported here (without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def engine_status() -> str:
    """One line for ``phasm backends``: how CPU inference is chosen on this installation."""
    setting = engine_setting()
    if not onnx_available():
        return ("CPU inference: each model on its own backend (onnxruntime not installed; "
                "pip install 'phasm[onnx]' to let phasm pick it when it is faster)")
    import onnxruntime

    from phasm.backends.onnx_engine import CUDA_PROVIDER, available_providers

    gpu = " (CUDAExecutionProvider offered: backend 'onnx' serves on the GPU)" if CUDA_PROVIDER in available_providers() else ""
    how = {"auto": "torch models are timed against it once at load (batch 1 and 1024) and served by the faster",
           "torch": f"forced off by {ENGINE_ENV}=torch", "onnx": f"forced on by {ENGINE_ENV}=onnx"}[setting]
    return f"CPU inference: onnxruntime {onnxruntime.__version__}{gpu}; {how}"


def _native(art: Any) -> tuple[Callable[[Any], np.ndarray], Callable[[Any], np.ndarray] | None,
                              Callable[[np.ndarray, np.ndarray], np.ndarray] | None]:
    """The model's own engine: the backend's folded raw -> raw function, or standardise -> predict -> unstandardise;
    its members; and ``f(X, out)`` when the folded function writes into ``out`` itself (``zero_copy`` backends).

    With transforms or set-aside input columns, the folded function runs between :meth:`ModelArtefact.model_rows`
    and :meth:`ModelArtefact.caller_outputs` (the transforms, column choice and checks stay in numpy; no
    writing into the caller's buffer then).
    """
    backend, xn, yn, layout = art.backend, art.x_norm, art.y_norm, art.layout
    kept = art.columns.kept
    core = None if layout.ragged else backend.fold_normalisation(xn.mean[kept], xn.scale[kept], yn.mean, yn.scale)
    into = core if core is not None and backend.zero_copy and art.plain else None
    if core is None:
        def folded(X: Any) -> np.ndarray:
            return art.outside_to_nan(X, yn.inverse(backend.predict(art.backend_inputs(X))))  # type: ignore[no-any-return]
    elif art.plain:
        folded = core
    else:
        def folded(X: Any) -> np.ndarray:
            return art.caller_outputs(X, core(art.model_rows(X)))  # type: ignore[no-any-return]
    members = None
    if backend.has_members:
        def members(X: Any) -> np.ndarray:
            out = yn.inverse(backend.predict_members(art.backend_inputs(X)))
            if not art.columns.identity:
                out[:, ~art.columns.inside(X)] = np.nan
            return out  # type: ignore[no-any-return]
    return folded, members, into


def _on_cpu(backend: Any) -> bool:
    parts = getattr(backend, "members_", None) or [backend]
    return all(getattr(getattr(p, "device_", None), "type", "cpu") == "cpu" for p in parts)


def _onnx_plan(art: Any, converted: Any) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray] | None]:
    xn, yn = art.x_norm, art.y_norm
    kept = art.columns.kept
    engine = converted.folded_engine(xn.mean[kept], xn.scale[kept], yn.mean, yn.scale)
    run, run_all = engine.run, engine.run_all
    if not art.plain:  # transforms and the column choice around the session (see _native)
        def run(X: Any) -> np.ndarray:
            return art.caller_outputs(X, engine.run(art.model_rows(X)))  # type: ignore[no-any-return]

        def run_all(X: Any) -> Any:
            outs = engine.run_all(art.model_rows(X))
            return [art.caller_outputs(X, np.asarray(o)) for o in outs]
    if converted.k_:
        return run, (lambda X: run_all(X)[1])
    return run, None


def _call_us(fn: Callable[[np.ndarray], Any], X: np.ndarray) -> float:
    t0 = time.perf_counter()
    fn(X)
    return (time.perf_counter() - t0) * 1e6


def _probe_rows(art: Any, n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((n, len(art.x_norm.mean))).astype(np.float32)
    rows = np.asarray(art.x_norm.inverse(z), np.float32)  # raw units, through any transform
    return rows if art.columns.identity else art.columns.fill(rows).astype(np.float32)


def remember_choice(digest: str | None, choice: InferenceChoice) -> None:
    """Keep ``choice`` for the model folder of manifest ``digest`` (just saved): its loads in this process
    use the same engine, so they give the same answers as the model that was saved."""
    if digest:
        if len(_CHOSEN) >= 256:
            _CHOSEN.pop(next(iter(_CHOSEN)))
        _CHOSEN[digest] = choice


def choose_inference(art: Any, engine: str | None = None, *, measure_again: bool = False) -> InferencePlan:
    """Pick the engine for ``art`` (see the module doc); ``engine``: ``auto`` / ``torch`` / ``onnx`` (default: ``$PHASM_ENGINE``).

    A model folder measured once in this process keeps its choice on later loads (same answers);
    ``measure_again`` measures anew.
    """
    t0 = time.perf_counter()
    setting = engine_setting(engine)
    backend = art.backend
    if art.layout.ragged:  # variable-length rows: the backend encodes and runs them itself
        predict, members, _ = _native(art)
        return InferencePlan(predict, members, InferenceChoice(
            backend.name, "set model: its backend encodes and runs the rows (backend 'onnx' with trainer "
            "'torch-sets' serves it with onnxruntime)", seconds=time.perf_counter() - t0))
    if backend.name == "onnx":  # an ONNX graph already: its folded session is the only engine
        predict, members = _onnx_plan(art, backend)
        return InferencePlan(predict, members, InferenceChoice("onnx", "the model is an ONNX graph",
                                                               seconds=time.perf_counter() - t0))
    predict, members, into = _native(art)
    native = backend.name

    def keep(reason: str, timings: dict[str, dict[int, float]] | None = None) -> InferencePlan:
        return InferencePlan(predict, members, InferenceChoice(native, reason, timings or {}, time.perf_counter() - t0),
                             into)

    if getattr(backend, "stochastic", False):
        return keep("a generative model: its backend draws the samples (no ONNX form)")
    if setting == "torch":
        return keep(f"{ENGINE_ENV}=torch")
    if not onnx_available():
        return keep("onnxruntime is not installed (pip install 'phasm[onnx]')")
    if not _on_cpu(backend):
        return keep("the model runs on a GPU through its backend")
    digest = getattr(art, "digest", None)  # set for a saved or loaded model folder
    earlier = _CHOSEN.get(digest) if digest and setting == "auto" and not measure_again else None
    if earlier is not None and earlier.engine != "onnx":
        return keep(f"{earlier.reason}; measured at its first load in this process", earlier.timings_us)
    t_import = time.perf_counter()
    import onnx  # noqa: F401  (the first model to need them pays for the imports: said apart in the report)
    import onnxruntime  # noqa: F401

    from phasm.backends.onnx_backend import OnnxBackend

    import_s = time.perf_counter() - t_import
    t0 += import_s
    try:
        converted = OnnxBackend.from_backend(backend, serve_device="cpu")
    except BackendError as exc:
        return keep(f"no ONNX form: {exc}")
    if converted is None:
        return keep(f"backend {native!r} has no ONNX form here")
    try:
        o_predict, o_members = _onnx_plan(art, converted)
    except BackendError as exc:
        return keep(f"onnxruntime cannot run the converted graph: {exc}")
    if setting == "onnx" or earlier is not None:  # forced, or measured before: the same engine, the same answers
        reason = f"{ENGINE_ENV}=onnx" if earlier is None else f"{earlier.reason}; measured at its first load in this process"
        timings = {} if earlier is None else earlier.timings_us
        return InferencePlan(o_predict, o_members, InferenceChoice("onnx", reason, timings, time.perf_counter() - t0,
                                                                   import_s))
    plan = _measure(art, predict, members, o_predict, o_members, native, t0)
    if plan.predict is predict:  # the native engine kept: it may write into the caller's buffer
        plan.predict_into = into
    plan.choice.import_seconds = import_s
    if digest:
        if len(_CHOSEN) >= 256:
            _CHOSEN.pop(next(iter(_CHOSEN)))
        _CHOSEN[digest] = plan.choice
    return plan


def _measure(art: Any, predict: Callable[[np.ndarray], np.ndarray], members: Any, o_predict: Callable[[np.ndarray], np.ndarray],
             o_members: Any, native: str, t0: float) -> InferencePlan:
    """Time both engines at batch 1 and 1024 (after checking they agree) and keep the faster."""
    def keep(reason: str, timings: dict[str, dict[int, float]] | None = None) -> InferencePlan:
        return InferencePlan(predict, members, InferenceChoice(native, reason, timings or {}, time.perf_counter() - t0))

    timings: dict[str, dict[int, float]] = {native: {}, "onnx": {}}
    for n in PROBE_BATCHES:
        X = _probe_rows(art, n)
        ref, got = predict(X), o_predict(X)  # also the warm-up call of each engine at this size
        spread = np.maximum(np.abs(art.y_norm.scale), 1e-30)
        y_tf = art.y_norm.transforms  # compared on the scale the model learnt (a log: relative differences)
        ref_m, got_m = (ref, got) if y_tf is None else (y_tf.forward(ref), y_tf.forward(got))
        err = float(np.max(np.abs(np.asarray(got_m, np.float64) - ref_m) / spread))
        if not np.isfinite(err) or err > AGREEMENT:
            return keep(f"onnxruntime's answers differ from {native}'s by {err:.2g} output scales at batch {n}")
        deadline = time.perf_counter() + BUDGET_S / len(PROBE_BATCHES)
        t_native = t_onnx = np.inf
        for r in range(MAX_ROUNDS):  # interleaved, best of each: the least disturbed call on a busy machine
            t_native = min(t_native, _call_us(predict, X))
            t_onnx = min(t_onnx, _call_us(o_predict, X))
            clear = max(t_native, t_onnx) > CLEAR_WIN * min(t_native, t_onnx)  # more rounds would not change it
            if clear or (r >= MIN_ROUNDS - 1 and time.perf_counter() > deadline):
                break
        timings[native][n], timings["onnx"][n] = t_native, t_onnx
    ratio = float(np.sqrt(np.prod([timings["onnx"][n] / timings[native][n] for n in PROBE_BATCHES])))
    if ratio < 1.0:
        return InferencePlan(o_predict, o_members, InferenceChoice(
            "onnx", f"faster here (time ratio onnx/{native} {ratio:.2f}, geometric mean over batch 1 and 1024)",
            timings, time.perf_counter() - t0))
    return keep(f"faster here than onnxruntime (time ratio onnx/{native} {ratio:.2f})", timings)


def export_onnx(art: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``art``'s network as a self-contained ONNX file mapping raw inputs to raw outputs.

    The standardisation is folded in (``y``; ensembles also ``members``); set models take the
    encoded rows of :func:`phasm.bindings.ragged.encode` in user units.  Returns the path.
    """
    from phasm.backends.onnx_backend import OnnxBackend

    if not art.plain:
        # The file maps raw inputs to raw outputs with the standardisation folded in; a log or other transform,
        # or the checks of set-aside constant and duplicate inputs, are not written into the graph.
        what = "; ".join(f"{k}: {v}" for k, v in art.describe_inputs().items() if v)
        raise BackendError(f"export_onnx: {art.spec.function} is learnt on transformed variables or a subset of its "
                           f"inputs ({what}), which an ONNX file of the network alone would not apply; train with "
                           "transforms=\"standardise\" for an ONNX export, or export to C (phasm export --lang c), "
                           "which applies them")
    converted = OnnxBackend.from_backend(art.backend, serve_device="cpu")
    if converted is None:
        raise BackendError(f"backend {art.backend.name!r} has no ONNX form (the default torch MLP, ensembles of it "
                           "and torch-sets networks have)")
    model = converted.folded_model(art.x_norm.mean, art.x_norm.scale, art.y_norm.mean, art.y_norm.scale)
    model.doc_string = f"phasm surrogate of {art.spec.function}: raw inputs {art.spec.n_in_features} -> outputs {art.spec.n_out_features}"
    path = Path(path)
    path.write_bytes(model.SerializeToString())
    return path
