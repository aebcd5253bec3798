"""Backend ``torch-sets``: a permutation-invariant set encoder (DeepSets) for variable-length inputs.

Each ragged input (a list of hits, particles ...) goes element by element
through a small MLP ``phi``; the element embeddings are pooled with masked
mean and max (order does not matter, padding is ignored) and concatenated
with the count (``log1p``) and the fixed inputs; an MLP ``rho`` maps that to
the outputs.  Training reuses :func:`phasm.backends.torch_train.train_module`
on the ragged training data of ``phasm.train.ragged``, whose batches are bucketed by
length and encoded as flat matrices (fixed | padded set values | mask).
``fn.train()`` picks this backend by itself when the spec has ragged inputs.

Example
-------
>>> net = SetNet(n_fixed=1, set_dims=[2], n_out=3, phi_hidden=(8,), rho_hidden=(8,))
>>> import torch
>>> x = torch.zeros(4, 1 + 5 * (2 + 1))      # 4 rows, sets padded to 5 elements
>>> net(x).shape
torch.Size([4, 3])
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from phasm.backends.base import Backend, BackendError, FitHistory, TrainingData
from phasm.bindings.layout import RaggedLayout
from phasm.bindings.ragged import RaggedInputs, encode, row_max_lengths
from phasm.backends.torch_nets import ACTIVATIONS, build_mlp
from phasm.backends.torch_train import pick_device, train_module

WEIGHTS_FILE = "sets.safetensors"
PREDICT_CHUNK = 4096
SMALL_MODEL_PARAMS = 500_000  # below this, one CPU thread trains faster than several (no sync overhead)
SMALL_BATCH_ROWS = 256
NUMPY_ROWS = 64  # up to this many rows, a numpy forward pass beats torch's per-operator overhead


def _np_silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


NUMPY_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "silu": _np_silu,
    "tanh": np.tanh,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "softplus": lambda x: np.logaddexp(0.0, x).astype(x.dtype),
}


def _numpy_layers(seq: torch.nn.Module) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Leaf layers in order: ``(W.T, b)`` for a Linear, ``None`` for the activation."""
    out: list[tuple[np.ndarray, np.ndarray] | None] = []
    for m in seq.modules():
        if isinstance(m, torch.nn.Linear):
            out.append((m.weight.detach().cpu().numpy().T.copy(), m.bias.detach().cpu().numpy().copy()))
        elif not list(m.children()):
            out.append(None)
    return out


def _np_mlp(x: np.ndarray, layers: list[Any], act: Any) -> np.ndarray:
    for layer in layers:
        x = act(x) if layer is None else x @ layer[0] + layer[1]
    return x


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` intra-op CPU threads (``None``: unchanged), restoring the previous setting."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SetNet(torch.nn.Module):
    """``rho([fixed, pool(phi(set_1)), log1p|set_1|, ...])`` over encoded rows (see :mod:`phasm.train.ragged`)."""

    def __init__(self, n_fixed: int, set_dims: Sequence[int], n_out: int, phi_hidden: Sequence[int] = (64, 64),
                 rho_hidden: Sequence[int] = (128, 128), activation: str = "silu", seed: int | None = 0) -> None:
        super().__init__()
        if not set_dims:
            raise BackendError("torch-sets: the spec has no variable-length input")
        self.n_fixed = int(n_fixed)
        self.set_dims = [int(k) for k in set_dims]
        self.per_slot = sum(k + 1 for k in self.set_dims)
        width = int(phi_hidden[-1]) if phi_hidden else 32
        act = ACTIVATIONS[activation]
        self.phis = torch.nn.ModuleList()
        for i, k in enumerate(self.set_dims):
            mlp = build_mlp(k, width, list(phi_hidden[:-1]), activation, seed=None if seed is None else seed + 101 * (i + 1))
            self.phis.append(torch.nn.Sequential(mlp, act()))
        rho_in = self.n_fixed + len(self.set_dims) * (2 * width + 1)
        self.rho = build_mlp(rho_in, int(n_out), list(rho_hidden), activation, seed=seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        L = (x.shape[1] - self.n_fixed) // self.per_slot
        feats = [x[:, : self.n_fixed]]
        pos = self.n_fixed
        for k, phi in zip(self.set_dims, self.phis):
            vals = x[:, pos : pos + L * k].reshape(x.shape[0], L, k)
            pos += L * k
            mask = x[:, pos : pos + L].unsqueeze(-1)
            pos += L
            h = phi(vals)
            count = mask.sum(1)
            mean = (h * mask).sum(1) / count.clamp_min(1.0)
            mx = torch.where(mask > 0, h, torch.full_like(h, -1e4)).amax(1)
            mx = torch.where(count > 0, mx, torch.zeros_like(mx))
            feats += [mean, mx, torch.log1p(count)]
        return self.rho(torch.cat(feats, dim=1))


class TorchSetsBackend(Backend):
    """Backend ``torch-sets``: DeepSets-style set encoder + MLP for specs with ragged inputs.

    Parameters
    ----------
    phi_hidden: widths of the per-element MLP (the last is the embedding width).
    rho_hidden: hidden widths of the MLP after pooling.
    activation, epochs, batch_size, lr, weight_decay, lr_schedule, patience, seed, device:
        as for backend ``torch`` (training by ``train_module``).
    threads: CPU threads for torch while training/predicting; ``None`` (default): one thread for
        small models and small batches (faster on a busy or small machine), torch's setting otherwise.

    Example
    -------
    >>> TorchSetsBackend(phi_hidden=(32, 32), epochs=50).get_params()["phi_hidden"]
    [32, 32]
    """

    name = "torch-sets"
    requires = ("torch", "safetensors")
    extra = "torch"
    accepts_ragged = True

    def __init__(self, phi_hidden: Sequence[int] = (64, 64), rho_hidden: Sequence[int] = (128, 128),
                 activation: str = "silu", epochs: int = 200, batch_size: int = 64, lr: float = 2e-3,
                 weight_decay: float = 0.0, lr_schedule: str = "cosine", patience: int | None = 30, seed: int = 0,
                 device: str | None = None, threads: int | None = None) -> None:
        if activation not in ACTIVATIONS:
            raise BackendError(f"torch-sets: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if not phi_hidden:
            raise BackendError("torch-sets: phi_hidden needs at least one width (the embedding width)")
        super().__init__(phi_hidden=[int(h) for h in phi_hidden], rho_hidden=[int(h) for h in rho_hidden],
                         activation=activation, epochs=int(epochs), batch_size=int(batch_size), lr=float(lr),
                         weight_decay=float(weight_decay), lr_schedule=lr_schedule,
                         patience=None if patience is None else int(patience), seed=int(seed), device=device,
                         threads=None if threads is None else int(threads))

    @classmethod
    def library_version(cls) -> str:
        return torch.__version__

    def _build(self) -> SetNet:
        p = self.params
        return SetNet(self.n_fixed_, self.set_dims_, self.n_out_, p["phi_hidden"], p["rho_hidden"], p["activation"], seed=p["seed"])

    def fit(self, data: TrainingData, *, verbose: bool = False) -> FitHistory:
        layout = data.layout
        if not isinstance(layout, RaggedLayout):
            raise BackendError("torch-sets: the training data has no variable-length input (a flat input layout); "
                               "use backend 'torch'")
        p = self.params
        self.n_fixed_, self.set_dims_, self.n_out_ = layout.n_fixed, list(layout.set_dims), int(data.n_out)
        self.set_names_ = list(layout.set_names)
        module = self._build()
        dev = pick_device(p["device"])
        n_params = sum(t.numel() for t in module.parameters())
        threads = p.get("threads") or (1 if dev.type == "cpu" and n_params < SMALL_MODEL_PARAMS else None)
        with torch_threads(threads):
            hist = train_module(module, data, epochs=p["epochs"], batch_size=p["batch_size"], lr=p["lr"],
                                weight_decay=p["weight_decay"], lr_schedule=p["lr_schedule"], patience=p["patience"],
                                seed=p["seed"], device=dev, verbose=verbose)
        module.eval()
        self.module_, self.device_ = module, dev
        self._prepare_numpy()
        hist.notes["parameters"] = int(sum(t.numel() for t in module.parameters()))
        return hist

    def predict(self, X: Any) -> np.ndarray:
        """Standardised :class:`~phasm.bindings.ragged.RaggedInputs` (or an encoded matrix) -> ``(n, n_out)``."""
        module = getattr(self, "module_", None)
        if module is None:
            raise BackendError("torch-sets: predict called before fit/load")
        if not isinstance(X, RaggedInputs):
            return self._run(np.asarray(X, np.float32))
        if list(X.sets) != self.set_names_ or X.fixed.shape[1] != self.n_fixed_:
            raise BackendError(f"torch-sets: inputs have sets {list(X.sets)} and {X.fixed.shape[1]} fixed features; "
                               f"the model was trained on sets {self.set_names_} and {self.n_fixed_} fixed features")
        n = len(X)
        if n <= NUMPY_ROWS and getattr(self, "np_layers_", None) is not None:
            return self._numpy_forward(X)
        if n <= 64:
            return self._run(encode(X))
        out = np.empty((n, self.n_out_), np.float32)
        order = np.argsort(row_max_lengths(X), kind="stable")  # similar lengths together: little padding
        for s in range(0, n, PREDICT_CHUNK):
            idx = order[s : s + PREDICT_CHUNK]
            out[idx] = self._run(encode(X.take(idx)))
        return out

    def _prepare_numpy(self) -> None:
        act = NUMPY_ACTIVATIONS.get(self.params["activation"])
        if act is None or self.device_.type != "cpu":
            self.np_layers_ = None
            return
        self.np_act_ = act
        self.np_layers_ = ([_numpy_layers(phi) for phi in self.module_.phis], _numpy_layers(self.module_.rho))

    def _numpy_forward(self, X: Any) -> np.ndarray:
        """The set network in numpy, on the ragged rows directly (no padding): for a few rows per call."""
        assert self.np_layers_ is not None
        phis, rho = self.np_layers_
        act = self.np_act_
        n = len(X)
        feats = [np.asarray(X.fixed, np.float32)]
        for layers, r in zip(phis, X.sets.values()):
            lengths = r.lengths
            width_in = int(np.prod(r.values.shape[1:], dtype=np.int64))  # (0, -1) cannot be inferred: no hits
            h = _np_mlp(np.asarray(r.values, np.float32).reshape(len(r.values), width_in), layers, act)
            last_linear = layers[-2]  # the embedding layer (the activation after it is last)
            assert last_linear is not None
            width = last_linear[1].shape[0]
            mean = np.zeros((n, width), np.float32)
            mx = np.zeros((n, width), np.float32)
            nonempty = lengths > 0
            if nonempty.any():
                starts = r.offsets[:-1][nonempty]
                mean[nonempty] = np.add.reduceat(h, starts, axis=0) / lengths[nonempty, None]
                mx[nonempty] = np.maximum.reduceat(h, starts, axis=0)
            feats += [mean, mx, np.log1p(lengths.astype(np.float32))[:, None]]
        return _np_mlp(np.concatenate(feats, axis=1), rho, act).astype(np.float32, copy=False)

    def _run(self, x: np.ndarray) -> np.ndarray:
        threads = self.params.get("threads") or (1 if len(x) <= SMALL_BATCH_ROWS else None)
        with torch_threads(threads), torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x, np.float32))
            if self.device_.type == "cpu":
                return self.module_(t).numpy()
            return self.module_(t.to(self.device_)).cpu().numpy()

    def state(self) -> dict[str, Any]:
        return {"n_fixed": self.n_fixed_, "set_dims": self.set_dims_, "set_names": self.set_names_, "n_out": self.n_out_}

    def save(self, directory: Path) -> list[str]:
        from safetensors.torch import save_file

        save_file({k: v.detach().cpu().contiguous() for k, v in self.module_.state_dict().items()}, str(Path(directory) / WEIGHTS_FILE))
        return [WEIGHTS_FILE]

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], state: dict[str, Any]) -> "TorchSetsBackend":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        self = cls(**params)
        self.n_fixed_, self.set_dims_ = int(state["n_fixed"]), [int(k) for k in state["set_dims"]]
        self.set_names_, self.n_out_ = list(state["set_names"]), int(state["n_out"])
        path = Path(directory) / WEIGHTS_FILE
        try:
            weights = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise BackendError(f"torch-sets: cannot read weights {path}: {exc} (file truncated or corrupted?)") from None
        module = self._build()
        try:
            module.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            raise BackendError(f"torch-sets: weights in {path} do not fit the saved architecture: {exc}") from None
        dev = pick_device(params.get("device"))
        module.to(dev).eval()
        self.module_, self.device_ = module, dev
        self._prepare_numpy()
        return self
