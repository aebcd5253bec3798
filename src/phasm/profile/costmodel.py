"""Cost model: what a surrogate costs per call, and the speedup it buys.

For a :class:`phasm.Surrogate` with a model attached, measured on this machine:

* ``t_orig``: the original function per call, re-run on captured inputs;
* ``t_model``: a model-mode call through the wrapper (packing, predict, unpacking);
* ``t_gate``: the trust gate per call; ``f``: the share of captured rows it rejects;
* the bare model's time per row against batch size (1..65536), and for plain
  MLPs against width (when torch is installed; CUDA too when present).

Then ``s_eff = t_orig / (t_model + t_gate + f * t_orig)`` and, for a function
taking a share ``p`` of the run, the predicted end-to-end speedup
``1 / ((1 - p) + p / s_eff)``. The result is JSON, which ``phasm profile
--cost`` reads to rank candidates with a measured ``s``.

Example
-------
>>> cm = CostModel(function="sim:solve", t_orig_s=1e-3, t_model_s=2e-5, t_gate_s=5e-6, fallback_rate=0.01)
>>> round(cm.s_eff, 1), round(cm.speedup(0.6), 2)
(28.6, 2.38)
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from phasm.profile.ranking import amdahl, gustafson

BATCHES = tuple(4 ** k for k in range(9))  # 1 .. 65536


def machine_name() -> str:
    """Short description of this machine: CPU count and GPU, e.g. '2-core CPU, no GPU'."""
    gpu = "no GPU"
    try:
        import torch  # noqa: F401  (only if installed)

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except Exception:
        pass
    return f"{os.cpu_count()}-core CPU ({platform.machine()}), {gpu}"


@dataclass
class CostModel:
    """Measured per-call costs of one surrogate; all times in seconds per call."""

    function: str
    t_orig_s: float
    t_model_s: float
    t_gate_s: float
    fallback_rate: float
    rows_per_call: int = 1
    n_measured: int = 0
    model_curve: dict[str, float] = field(default_factory=dict)      # batch -> s per row (bare model)
    width_curves: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # device -> width -> batch -> s/row
    machine: str = ""
    backend: str = ""

    def __post_init__(self) -> None:
        for name in ("t_orig_s", "t_model_s", "t_gate_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"CostModel.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.fallback_rate <= 1:
            raise ValueError(f"CostModel.fallback_rate must be within [0, 1], got {self.fallback_rate}")

    @property
    def s_eff(self) -> float:
        """Effective per-call speed of the surrogate: ``t_orig / (t_model + t_gate + f * t_orig)``."""
        denom = self.t_model_s + self.t_gate_s + self.fallback_rate * self.t_orig_s
        return float("inf") if denom <= 0 else self.t_orig_s / denom

    def speedup(self, p: float) -> float:
        """Predicted end-to-end speedup (Amdahl) of a program spending share ``p`` in this function."""
        return amdahl(p, self.s_eff)

    def scaled_speedup(self, p: float) -> float:
        """Gustafson's scaled speedup for share ``p``."""
        return gustafson(p, self.s_eff)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["format"] = "phasm-cost/1"
        d["s_eff"] = self.s_eff
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "CostModel":
        if d.get("format") != "phasm-cost/1":
            raise ValueError(f"not a phasm cost model: format={d.get('format')!r}")
        fields = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**fields)

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "CostModel":
        return cls.from_json(json.loads(Path(path).read_text()))


def load_costs(paths: Sequence[str | os.PathLike[str]]) -> dict[str, float]:
    """``{module:qualname: s_eff}`` from cost-model JSON files (for :func:`phasm.profile.rank`)."""
    out = {}
    for p in paths:
        cm = CostModel.load(p)
        out[cm.function] = cm.s_eff
    return out


# -- measuring -------------------------------------------------------------------


def _per_call(fn: Callable[[], Any], n: int, budget_s: float, stat: str = "mean") -> tuple[float, int]:
    """Run ``fn`` up to ``n`` times or for ``budget_s``; seconds per call (mean, or median of calls), calls."""
    times: list[float] = []
    t0 = time.perf_counter()
    while len(times) < n:
        t = time.perf_counter()
        fn()
        t_end = time.perf_counter()
        times.append(t_end - t)
        if t_end - t0 > budget_s:
            break
    if stat == "median":
        times.sort()
        return times[len(times) // 2], len(times)
    return sum(times) / len(times), len(times)


def _call_args(fn: Any, inputs: Mapping[str, Any], i: int | slice) -> dict[str, Any]:
    """Keyword arguments for the original function from captured row(s) ``i``."""
    import numpy as np

    kwargs = {}
    for v in fn.spec.inputs:
        optic = v.optic
        if getattr(optic, "kind", None) != "arg":
            raise ValueError(f"{fn.name}: input {v.name!r} comes from {optic!r}, not an argument; the cost model "
                             "can only rebuild calls whose inputs are plain arguments")
        value = inputs[v.name][i]
        if isinstance(i, int) and not v.shape:
            value = value.item() if hasattr(value, "item") else value
        elif isinstance(value, np.ndarray):
            value = value.copy()
        kwargs[optic.name] = value
    return kwargs


def _time_bare_model(model: Any, X: Any, batches: Sequence[int], budget_s: float) -> dict[str, float]:
    import numpy as np

    curve = {}
    for b in batches:
        reps = int(np.ceil(b / len(X)))
        xb = np.ascontiguousarray(np.tile(X, (reps, 1))[:b])
        model.predict(xb[: min(b, 4)])  # warm
        t, _ = _per_call(lambda: model.predict(xb), 50, budget_s, "median")
        curve[str(b)] = t / b
        if t > budget_s:
            break
    return curve


def time_mlp_widths(n_in: int, n_out: int, widths: Sequence[int] = (32, 128, 512), batches: Sequence[int] = BATCHES,
                    budget_s: float = 0.2, depth: int = 3) -> dict[str, dict[str, dict[str, float]]]:
    """Seconds per row of a plain tanh MLP (``depth`` hidden layers) against width and batch, per device.

    Needs torch; returns ``{}`` without it. Untrained weights: cost does not depend on their values.
    Timed with one intra-op thread (restored after).
    """
    try:
        import torch
    except ImportError:
        return {}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    out: dict[str, dict[str, dict[str, float]]] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one intra-op thread: stable figures on a shared machine, the common inference setup
    try:
        _sweep(torch, devices, n_in, n_out, widths, batches, budget_s, depth, out)
    finally:
        torch.set_num_threads(threads)
    return out


def _sweep(torch: Any, devices: list[str], n_in: int, n_out: int, widths: Sequence[int], batches: Sequence[int],
           budget_s: float, depth: int, out: dict[str, dict[str, dict[str, float]]]) -> None:
    for dev in devices:
        out[dev] = {}
        for w in widths:
            layers: list[Any] = []
            d = n_in
            for _ in range(depth):
                layers += [torch.nn.Linear(d, w), torch.nn.Tanh()]
                d = w
            net = torch.nn.Sequential(*layers, torch.nn.Linear(d, n_out)).to(dev).eval()
            curve = {}
            for b in batches:
                x = torch.randn(b, n_in, device=dev)

                def run() -> None:
                    with torch.inference_mode():
                        net(x)
                    if dev == "cuda":
                        torch.cuda.synchronize()

                for _ in range(3):
                    run()
                t, _ = _per_call(run, 50, budget_s, "median")
                curve[str(b)] = t / b
                if t > budget_s:
                    break
            out[dev][str(w)] = curve


def measure_cost(fn: Any, *, store: str | os.PathLike[str] | None = None, model: str | os.PathLike[str] | None = None,
                 n_calls: int = 2000, budget_s: float = 1.0, batches: Sequence[int] = BATCHES,
                 widths: Sequence[int] | None = (32, 128, 512)) -> CostModel:
    """Measure the cost model of surrogate ``fn`` on its captured inputs (see module doc).

    ``store`` / ``model`` override the surrogate's capture store and attached model.
    ``budget_s`` bounds each timing loop; ``widths=None`` skips the MLP width sweep.
    """
    import numpy as np

    from phasm.bindings.spec import pack
    from phasm.store.reader import CaptureStore
    from phasm.surrogate.wrapper import Surrogate

    if not isinstance(fn, Surrogate):
        raise TypeError(f"measure_cost needs a phasm.Surrogate (a function wrapped by @phasm.surrogate), "
                        f"got {type(fn).__name__}")
    if model is not None:
        fn.load(model)
    if fn.model is None:
        raise ValueError(f"{fn.name}: no model attached; train one (fn.train()) or pass model=DIR")
    source = CaptureStore(store) if store is not None else fn.capture_store()
    n_rows = len(source)
    if n_rows == 0:
        raise ValueError(f"{fn.name}: the capture store has no rows to time the function on")
    if source.spec is None:
        raise ValueError(f"{fn.name}: store {source.path} holds no spec")
    spec = fn.bind_spec(source.spec, f"store {source.path}")
    n = min(n_rows, n_calls)
    inputs, _ = source.read(0, n)
    original = fn.__wrapped__
    art = fn.model
    rows_per_call = 1
    if fn.batched:
        rows_per_call = min(n, 256)
        calls = [_call_args(fn, inputs, slice(k, k + rows_per_call)) for k in range(0, n - rows_per_call + 1, rows_per_call)]
    else:
        calls = [_call_args(fn, inputs, i) for i in range(n)]
    X = pack(spec.inputs, {str(v.name): np.asarray(inputs[str(v.name)]) for v in spec.inputs}, n)

    def cycle(f: Callable[..., Any]) -> Callable[[], None]:
        it = {"k": 0}

        def one() -> None:
            f(**calls[it["k"] % len(calls)])
            it["k"] += 1
        return one

    original(**calls[0])
    t_orig, n_meas = _per_call(cycle(original), len(calls), budget_s)
    old_mode = fn.explicit_mode
    try:
        fn.mode = "model"
        fn(**calls[0])
        t_model, _ = _per_call(cycle(fn), max(len(calls), 200), budget_s)
    finally:
        fn.mode = old_mode
    Y = art.predict(X)
    xb, yb = X[:rows_per_call], Y[:rows_per_call]
    gate = fn.gate
    gate.accept(xb, yb, art)  # warm: a loaded gate's first call builds its search tree (not a per-call cost)
    t_gate, _ = _per_call(lambda: gate.accept(xb, yb, art), 500, budget_s / 4, "median")
    accepted = np.asarray(gate.accept(X, Y, art), bool) & np.isfinite(X).all(1) & np.isfinite(Y).all(1)
    f = 1.0 - float(accepted.mean())  # share of rows (and, unbatched, of calls) the original answers
    curve = _time_bare_model(art, X, batches, budget_s / 4)
    width_curves = time_mlp_widths(X.shape[1], Y.shape[1], widths, batches, budget_s / 8) if widths else {}
    return CostModel(function=_qualified(fn), t_orig_s=t_orig, t_model_s=t_model, t_gate_s=t_gate,
                     fallback_rate=f, rows_per_call=rows_per_call, n_measured=n_meas, model_curve=curve,
                     width_curves=width_curves, machine=machine_name(),
                     backend=str(getattr(getattr(art, "backend", None), "name", "")))


def _qualified(fn: Any) -> str:
    w = fn.__wrapped__
    return f"{w.__module__}:{w.__qualname__}"


def plot_cost(cm: CostModel, path: str | os.PathLike[str]) -> Path:
    """PNG: seconds per row against batch size (model, MLP widths), with the original's time per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    per_row_orig = cm.t_orig_s / cm.rows_per_call
    if cm.model_curve:
        b = [int(k) for k in cm.model_curve]
        ax.loglog(b, list(cm.model_curve.values()), "o-", lw=2, label=f"this model ({cm.backend or 'model'})")
    for dev, curves in cm.width_curves.items():
        for w, curve in curves.items():
            ax.loglog([int(k) for k in curve], list(curve.values()), "--", alpha=0.7, label=f"MLP width {w} ({dev})")
    ax.axhline(per_row_orig, color="k", lw=1.5, label=f"original {per_row_orig * 1e6:.1f} us/row")
    ax.axhline((cm.t_model_s + cm.t_gate_s) / cm.rows_per_call, color="C3", lw=1,
               label=f"surrogate call + gate {(cm.t_model_s + cm.t_gate_s) / cm.rows_per_call * 1e6:.1f} us/row")
    ax.set_xlabel("batch size (rows per model call)")
    ax.set_ylabel("seconds per row")
    ax.set_title(f"{cm.function}: s_eff = {cm.s_eff:.1f} (f = {cm.fallback_rate:.1%}), {cm.machine}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
