"""The ``torch`` backend: an MLP (or your own ``torch.nn.Module``) trained with Adam.

Data arrive standardised (the artefact stores the normalisation), so the
default network is a plain MLP: ``n_in -> hidden... -> n_out`` with a chosen
activation and a linear output layer, float32.  Training is
:func:`phasm.backends.torch_train.train_module` (streamed mini-batches, LR
schedule, early stopping with the best weights restored, seeded).

Persistence never pickles:

* the default MLP saves its weights in ``torch_mlp.safetensors`` and rebuilds
  from the JSON parameters (widths, activation);
* a custom module (``model=MyNet()``) is saved as a ``torch.export`` program
  ``model.pt2`` (graph + weights, no Python class needed to load it back);
  its forward must be exportable;
* a ``.pt2`` exported elsewhere loads through
  :func:`phasm.train.exported.load_exported` / ``fn.load_exported(path)``.

Example
-------
>>> import numpy as np, phasm
>>> from phasm.train import fit_model
>>> spec = phasm.Spec.from_declarations("m.f", {"x": phasm.Scalar()}, {"y": phasm.Scalar()})
>>> X = np.linspace(-2, 2, 400)[:, None]; Y = np.sin(X)
>>> art, res = fit_model((X, Y), spec, backend="torch", hidden=(32, 32), epochs=40, batch_size=32, lr=3e-3)
>>> bool(res.metrics["y"]["rmse"] < 0.05)
True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from phasm.backends.base import Backend, BackendError, FitHistory, TrainingData
from phasm.backends.physics import PhysicsProblem
from phasm.backends.torch_export import export_module, load_pt2, program_widths
from phasm.backends.torch_nets import ACTIVATIONS, SelectColumns, SkipMLP, build_mlp
from phasm.backends.torch_plan import inference_plan
from phasm.backends.torch_train import pick_device, train_module

WEIGHTS_FILE = "torch_mlp.safetensors"
EXPORT_FILE = "model.pt2"

__all__ = ["ACTIVATIONS", "SelectColumns", "SkipMLP", "TorchBackend", "build_mlp", "varying_columns"]


class TorchBackend(Backend):
    """Backend ``torch``: an MLP or a user module, trained by :func:`train_module`.

    Parameters
    ----------
    hidden: widths of the hidden layers of the default MLP.
    activation: one of ``relu silu gelu tanh elu softplus``.
    epochs, batch_size, lr, weight_decay, lr_schedule, patience: training (see ``train_module``).
    skip: add a linear path from input to output (see :class:`SkipMLP`); good for (nearly) linear responses.
    drop_constant: feed the MLP only the input columns that varied in the training data (a column that
        never changed carries no information; dropping it makes inference cheaper).
    seed: initial weights and batch order; the same seed gives the same weights on CPU.
    device: ``"cpu"``, ``"cuda"``...; default ``cuda`` when available.
    threads: torch CPU threads while training (``None``: torch's default). On a small or busy
        machine 1 thread can be many times faster than oversubscribed threads.
    model: your own ``torch.nn.Module`` mapping ``(batch, n_in)`` to ``(batch, n_out)``
        standardised rows; it is trained in place and saved with ``torch.export``.
    max_seconds: stop training after this many seconds (the cosine schedule anneals over the time).
    physics: a :class:`~phasm.backends.physics.PhysicsProblem` whose residual loss is added to the
        data loss (physics-informed training); built by ``fn.train(physics=residual, ...)``, see
        ``docs/physics-informed.md``. Like ``model``, it is code and is not saved with the weights.

    Example
    -------
    >>> TorchBackend(hidden=(64,), epochs=10).get_params()["hidden"]
    [64]
    """

    name = "torch"
    supports_physics = True
    zero_copy = True  # numpy float32 rows <-> CPU tensors through torch.from_numpy: the same memory
    requires = ("torch", "safetensors")
    extra = "torch"

    def __init__(self, hidden: Sequence[int] = (128, 128), activation: str = "silu", epochs: int = 200,
                 batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 0.0, lr_schedule: str = "cosine",
                 patience: int | None = 30, skip: bool = False, drop_constant: bool = True, seed: int = 0,
                 device: str | None = None, threads: int | None = None, max_seconds: float | None = None,
                 model: torch.nn.Module | None = None, physics: PhysicsProblem | None = None) -> None:
        if activation not in ACTIVATIONS:
            raise BackendError(f"torch: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if model is not None and not isinstance(model, torch.nn.Module):
            raise BackendError(f"torch: model must be a torch.nn.Module, got {type(model).__name__}")
        if physics is not None and not isinstance(physics, PhysicsProblem):
            raise BackendError("torch: physics must be a PhysicsProblem; pass your residual function through "
                               f"fn.train(physics=...) or phasm.train.fit_model(..., physics=...), got {type(physics).__name__}")
        super().__init__(hidden=[int(h) for h in hidden], activation=activation, epochs=int(epochs),
                         batch_size=int(batch_size), lr=float(lr), weight_decay=float(weight_decay),
                         lr_schedule=lr_schedule, patience=None if patience is None else int(patience),
                         skip=bool(skip), drop_constant=bool(drop_constant), seed=int(seed), device=device,
                         threads=None if threads is None else int(threads),
                         max_seconds=None if max_seconds is None else float(max_seconds))
        self.model = model
        self.physics = physics

    @classmethod
    def library_version(cls) -> str:
        return torch.__version__

    # -- learning and inference ------------------------------------------

    def fit(self, data: TrainingData, *, verbose: bool = False) -> FitHistory:
        p = self.params
        dev = pick_device(p["device"])
        if self.model is not None:
            module = self.model
            self.kind_ = "export"
        else:
            keep = varying_columns(data) if p["drop_constant"] and data.n_train else None
            if keep is not None and self.physics is not None:
                # A column constant in the few captures can still vary over the physics domain.
                keep = np.union1d(keep, self.physics.varying_columns()).astype(np.int64)
            module = self._build(int(data.n_in), int(data.n_out), keep, seed=p["seed"])
            self.kind_ = "mlp"
        self.n_in_, self.n_out_ = int(data.n_in), int(data.n_out)
        self._check_widths(module, dev)
        physics = None
        if self.physics is not None:
            if (self.physics.n_in, self.physics.n_out) != (self.n_in_, self.n_out_):
                raise BackendError(f"torch: the physics problem maps {self.physics.n_in} -> {self.physics.n_out} "
                                   f"features; the data {self.n_in_} -> {self.n_out_}")
            from phasm.backends.torch_physics import PhysicsLoss

            physics = PhysicsLoss(self.physics, dev, seed=p["seed"])
        hist = train_module(module, data, epochs=p["epochs"], batch_size=p["batch_size"], lr=p["lr"],
                            weight_decay=p["weight_decay"], lr_schedule=p["lr_schedule"], patience=p["patience"],
                            seed=p["seed"], device=dev, threads=p["threads"], verbose=verbose,
                            physics=physics, max_seconds=p.get("max_seconds"))
        self._set_module(module, dev)
        hist.notes["parameters"] = int(sum(t.numel() for t in module.parameters()))
        return hist

    def _build(self, n_in: int, n_out: int, keep: np.ndarray | None, *, seed: int | None) -> torch.nn.Module:
        p = self.params
        if keep is None or len(keep) == n_in:
            self.n_used_ = n_in
            return build_mlp(n_in, n_out, p["hidden"], p["activation"], seed=seed, skip=p["skip"])
        self.n_used_ = int(len(keep))
        core = build_mlp(len(keep), n_out, p["hidden"], p["activation"], seed=seed, skip=p["skip"])
        return torch.nn.Sequential(SelectColumns(torch.as_tensor(keep)), core)

    def _check_widths(self, module: torch.nn.Module, dev: torch.device) -> None:
        module.to(dev)
        try:
            with torch.inference_mode():
                out = module(torch.zeros(2, self.n_in_, device=dev))
        except Exception as exc:
            raise BackendError(f"torch: the model does not accept a (batch, {self.n_in_}) input: {exc}") from None
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, self.n_out_):
            raise BackendError(f"torch: the model must map (batch, {self.n_in_}) to (batch, {self.n_out_}); "
                               f"it returned {tuple(getattr(out, 'shape', ()))} for a batch of 2")

    def _set_module(self, module: torch.nn.Module, dev: torch.device) -> None:
        if not hasattr(self, "program_"):  # an exported program's module is already in inference form
            module.eval()
        self.module_ = module
        self.device_ = dev
        self._plan = inference_plan(module) if self.kind_ == "mlp" else None

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Standardised ``(n, n_in)`` float32 rows -> ``(n, n_out)``; no copy on CPU for contiguous float32 input."""
        return self.predict_into(X, None)

    def predict_into(self, X: np.ndarray, out: np.ndarray | None) -> np.ndarray:  # type: ignore[override]
        """:meth:`predict` written into ``out`` (C-contiguous float32 ``(n, n_out)``; ``None``: a new array).

        On CPU, ``X`` and ``out`` are wrapped with ``torch.from_numpy`` (the same memory, no copy) and the
        last layer of the default MLP writes into ``out``; on a GPU the rows move once each way.
        """
        module = getattr(self, "module_", None)
        if module is None:
            raise BackendError("torch: predict called before fit/load")
        x = as_rows(X, self.n_in_)
        o = None if out is None else as_out(out, len(x), self.n_out_)
        plan = self._plan
        if plan is not None and self.device_.type == "cpu":
            # The plan's weights are detached and x does not require grad: no autograd graph is
            # recorded, so the inference_mode context (a few microseconds per call) is not needed.
            return plan(x, o).numpy()
        with torch.inference_mode():
            if self.device_.type == "cpu":
                y = module(x)
            else:
                y = (plan or module)(x.to(self.device_, non_blocking=True)).cpu()
            if o is None:
                return y.numpy()
            o.copy_(y)
            return o.numpy()

    # Folding (x - m) / s into the first layer multiplies the input by 1/s and subtracts m/s: in
    # float32 that loses digits when |m| >> s, so such models keep the separate standardisation.
    FOLD_MAX_OFFSET = 16.0

    def fold_normalisation(self, x_mean: np.ndarray, x_scale: np.ndarray, y_mean: np.ndarray,
                           y_scale: np.ndarray) -> Any:
        """Raw -> raw function with the standardisation folded into the first and last layers (CPU MLPs)."""
        if self._plan is None or self.device_.type != "cpu":
            return None
        offset = np.abs(np.asarray(x_mean, np.float64) / np.asarray(x_scale, np.float64))
        if offset.size and float(offset.max()) > self.FOLD_MAX_OFFSET:
            return None
        plan = inference_plan(self.module_, fold=(x_mean, x_scale, y_mean, y_scale))
        if plan is None:
            return None
        n_in, n_out = self.n_in_, self.n_out_

        def run(X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
            x = as_rows(X, n_in)
            return plan(x, None if out is None else as_out(out, len(x), n_out)).numpy()

        return run

    # -- persistence ------------------------------------------------------

    def state(self) -> dict[str, Any]:
        if self.kind_ == "mlp":
            return {"kind": "mlp", "n_in": self.n_in_, "n_out": self.n_out_, "n_used": self.n_used_}
        return {"kind": self.kind_, "n_in": self.n_in_, "n_out": self.n_out_, "module": type(self.module_).__name__}

    def save(self, directory: Path) -> list[str]:
        directory = Path(directory)
        module = self.module_
        if self.kind_ == "mlp":
            from safetensors.torch import save_file

            save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(directory / WEIGHTS_FILE))
            return [WEIGHTS_FILE]
        if isinstance(module, torch.fx.GraphModule) and hasattr(self, "program_"):
            torch.export.save(self.program_, str(directory / EXPORT_FILE))
        else:
            dev = next((t.device for t in module.parameters()), torch.device("cpu"))
            try:
                export_module(module.cpu(), self.n_in_, directory / EXPORT_FILE)
            finally:
                module.to(dev)
        return [EXPORT_FILE]

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], state: dict[str, Any]) -> "TorchBackend":
        directory = Path(directory)
        self = cls(**params)
        kind = state.get("kind", "mlp")
        self.n_in_, self.n_out_ = int(state["n_in"]), int(state["n_out"])
        dev = pick_device(params.get("device"))
        if kind == "mlp":
            from safetensors import SafetensorError
            from safetensors.torch import load_file

            path = directory / WEIGHTS_FILE
            try:
                weights = load_file(str(path))
            except (SafetensorError, OSError, ValueError) as exc:
                raise BackendError(f"torch: cannot read weights {path}: {exc} (file truncated or corrupted?)") from None
            n_used = int(state.get("n_used", self.n_in_))
            if not 1 <= n_used <= self.n_in_:
                raise BackendError(f"torch: artefact state n_used={n_used} is outside 1..{self.n_in_}")
            keep = None if n_used == self.n_in_ else np.zeros(n_used, np.int64)  # real index comes from the weights
            module = self._build(self.n_in_, self.n_out_, keep, seed=None)
            try:
                module.load_state_dict(weights, strict=True)
            except RuntimeError as exc:
                raise BackendError(f"torch: weights in {path} do not fit a {self.n_in_}->{list(params.get('hidden', []))}->"
                                   f"{self.n_out_} MLP: {exc}") from None
            self.kind_ = "mlp"
            if keep is not None:
                assert isinstance(module, torch.nn.Sequential) and isinstance(module[0], SelectColumns)
                index = module[0].index
                if index.min() < 0 or index.max() >= self.n_in_:
                    raise BackendError(f"torch: weights in {path} select input columns outside 0..{self.n_in_ - 1}")
        elif kind == "export":
            self._attach_program(load_pt2(directory / EXPORT_FILE), directory / EXPORT_FILE)
            module = self.module_
        else:
            raise BackendError(f"torch: unknown model kind {kind!r} in the artefact")
        self._set_module(module.to(dev), dev)
        return self

    def _attach_program(self, prog: Any, where: Any) -> None:
        n_in, n_out = program_widths(prog, where)
        if (n_in, n_out) != (self.n_in_, self.n_out_):
            raise BackendError(f"{where}: the exported model maps {n_in} -> {n_out} features; expected {self.n_in_} -> {self.n_out_}")
        self.program_ = prog
        self.kind_ = "export"
        self.module_ = prog.module(check_guards=False)
        self.device_ = torch.device("cpu")

    @classmethod
    def from_program_file(cls, path: str | os.PathLike[str], n_in: int, n_out: int, **params: Any) -> "TorchBackend":
        """A backend around a ``.pt2`` exported elsewhere, checked to map ``n_in`` to ``n_out`` features."""
        self = cls(**params)
        self.n_in_, self.n_out_ = int(n_in), int(n_out)
        self._attach_program(load_pt2(path), path)
        dev = pick_device(self.params["device"])
        self._set_module(self.module_.to(dev), dev)
        return self


def as_rows(X: np.ndarray, n_in: int) -> torch.Tensor:
    """Model input rows as a CPU tensor: C-contiguous float32 ``X`` is wrapped where it lies (no copy);
    anything else is converted once."""
    x = torch.from_numpy(X if (type(X) is np.ndarray and X.dtype == np.float32 and X.flags.c_contiguous)
                         else np.ascontiguousarray(X, np.float32))
    if x.ndim != 2 or x.shape[1] != n_in:
        raise BackendError(f"torch: X must be (n, {n_in}) float32, got {tuple(x.shape)}")
    return x


def as_out(out: np.ndarray, n: int, n_out: int) -> torch.Tensor:
    """The caller's output buffer as a tensor sharing its memory; it must be C-contiguous float32 ``(n, n_out)``."""
    if (type(out) is not np.ndarray or out.dtype != np.float32 or not out.flags.c_contiguous
            or not out.flags.writeable or out.shape != (n, n_out)):
        raise BackendError(f"torch: out must be a writeable C-contiguous float32 array of shape ({n}, {n_out}), got "
                           f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}")
    return torch.from_numpy(out)


def varying_columns(data: TrainingData) -> np.ndarray:
    """Indices of the standardised input columns that are not constant over the training split (one pass)."""
    seen = np.zeros(data.n_in, bool)
    first: np.ndarray | None = None
    for X, _ in data.train_batches(65536, seed=0, shuffle=False):
        if len(X) == 0:
            continue
        if first is None:
            first = X[0].copy()
        seen |= (X != first).any(axis=0)
    keep = np.flatnonzero(seen)
    return keep if len(keep) else np.arange(min(1, data.n_in))
