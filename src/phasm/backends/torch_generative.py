"""Shared pieces of the torch generative backends: the training loop, threads, safetensors I/O.

Example
-------
>>> import torch
>>> _ = torch.manual_seed(0)
>>> net = torch.nn.Linear(1, 1)
>>> x = torch.linspace(-1, 1, 64)[:, None]
>>> def loss(idx, train):
...     return ((net(x[idx]) - 3 * x[idx]) ** 2).mean()
>>> hist = train_generator([net], loss, n_train=64, n_val=0, epochs=100, batch_size=16, lr=0.1, seed=0)
>>> hist.epochs, round(float(net.weight.detach()), 1)
(100, 3.0)
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Mapping

import numpy as np
import torch

from phasm.backends.base import BackendError, FitHistory
from phasm.backends.generative import GenerativeBackend, LayerCoding, PlainCoding

BatchLoss = Callable[[np.ndarray, bool], torch.Tensor]


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` torch CPU threads (``None``: leave torch's setting)."""
    if threads is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def train_generator(modules: list[torch.nn.Module], batch_loss: BatchLoss, *, n_train: int, n_val: int, epochs: int,
                    batch_size: int, lr: float, seed: int, patience: int | None = None,
                    max_seconds: float | None = None, val_loss: Callable[[], float] | None = None,
                    on_epoch: Callable[[int], None] | None = None, verbose: bool = False) -> FitHistory:
    """Adam with a cosine schedule over mini-batches of training-row indices (over ``epochs``, or over
    ``max_seconds`` if that comes first), early stopping on ``val_loss``.

    ``batch_loss(indices, True)`` returns the mean loss of those training rows; ``val_loss()`` the
    validation loss (called once per epoch when ``n_val``); ``on_epoch(epoch)`` runs before each
    epoch (fresh dequantisation noise).  The best validation state is restored at the end.
    """
    params = [p for m in modules for p in m.parameters()]
    if not params:
        raise BackendError("train_generator: the modules have no parameters")
    torch.manual_seed(seed)
    opt = torch.optim.Adam(params, lr=lr)
    steps_per_epoch = max(1, math.ceil(n_train / batch_size))
    total = max(1, epochs * steps_per_epoch)
    t0 = time.perf_counter()

    def progress(step: int) -> float:
        """Share of training done: of the steps, or of ``max_seconds`` if that runs out first (the rate
        then still anneals to its end, instead of stopping at its peak)."""
        done = step / total
        if max_seconds is not None:
            done = max(done, (time.perf_counter() - t0) / max_seconds)
        return min(done, 1.0)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * progress(s))))
    rng = np.random.default_rng(seed)
    hist = FitHistory(device="cpu")
    best, best_state, since = math.inf, None, 0
    for epoch in range(epochs):
        if on_epoch is not None:
            on_epoch(epoch)
        for m in modules:
            m.train()
        order = rng.permutation(n_train)
        total_loss = 0.0
        for s in range(0, n_train, batch_size):
            idx = order[s:s + batch_size]
            loss = batch_loss(idx, True)
            if not torch.isfinite(loss):
                raise BackendError(f"training diverged at epoch {epoch + 1}: loss {float(loss)}; lower lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            opt.step()
            sched.step()
            total_loss += float(loss.detach()) * len(idx)
        hist.train_loss.append(total_loss / max(n_train, 1))
        hist.epochs = epoch + 1
        if n_val and val_loss is not None:
            for m in modules:
                m.eval()
            with torch.no_grad():
                v = float(val_loss())
            hist.val_loss.append(v)
            if v < best:
                best, since, hist.best_epoch = v, 0, epoch + 1
                best_state = [copy.deepcopy(m.state_dict()) for m in modules]
            else:
                since += 1
        if verbose:
            print(f"epoch {epoch + 1}: train {hist.train_loss[-1]:.4f}" + (f" val {hist.val_loss[-1]:.4f}" if hist.val_loss else ""))
        if patience is not None and since >= patience:
            break
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            hist.notes["stopped"] = f"max_seconds={max_seconds}"
            break
    if best_state is not None:
        for m, st in zip(modules, best_state):
            m.load_state_dict(st)
    else:
        hist.best_epoch = hist.epochs
    for m in modules:
        m.eval()
    hist.seconds = time.perf_counter() - t0
    hist.notes["parameters"] = int(sum(p.numel() for p in params))
    return hist


def save_tensors(path: Path, modules: Mapping[str, torch.nn.Module], arrays: dict[str, np.ndarray]) -> None:
    """One safetensors file: every module's state under ``<name>.``, plus numpy arrays as they are."""
    from safetensors.torch import save_file

    tensors = {f"{name}.{k}": v.detach().cpu().contiguous() for name, m in modules.items() for k, v in m.state_dict().items()}
    tensors.update({k: torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in arrays.items()})
    save_file(tensors, str(path))


def load_tensors(path: Path, modules: Mapping[str, torch.nn.Module], array_keys: tuple[str, ...] = ("coding.",),
                 what: str = "generator") -> dict[str, np.ndarray]:
    """Fill ``modules`` from a safetensors file (strict); return the other arrays it holds."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise BackendError(f"{what}: cannot read weights {path.name}: {exc} (file truncated or corrupted?)") from None
    for name, m in modules.items():
        prefix = name + "."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            m.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BackendError(f"{what}: weights {path.name} do not fit the network {name!r}: "
                               f"{' '.join(str(exc).split())[:300]}") from None
        for v in m.state_dict().values():
            if v.is_floating_point() and not torch.isfinite(v).all():
                raise BackendError(f"{what}: weights {path.name} hold non-finite values in {name!r}")
    known = tuple(f"{n}." for n in modules)
    unknown = [k for k in tensors if not k.startswith(known) and not k.startswith(array_keys)]
    if unknown:
        raise BackendError(f"{what}: weights {path.name} hold unexpected tensors: {unknown[:3]}")
    return {k: v.numpy() for k, v in tensors.items() if k.startswith(array_keys)}


def as_tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(device)


class TorchGenerativeBackend(GenerativeBackend):
    """Persistence shared by the torch generators (``flow``, ``vae``): the widths and the coding
    kind as state, the networks' and the coding's arrays in one safetensors file.

    Subclasses set ``weights_file`` and build their networks (``nets_``) in ``_build()`` from
    ``n_in_``, ``n_out_`` and ``coding_``.
    """

    weights_file: ClassVar[str] = ""
    nets_: Any
    coding_: Any
    n_in_: int
    n_out_: int

    def _build(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _begin_fit(self, data: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The training and validation rows ``(Xt, Yt, Xv, Yv)`` of ``data``, with the widths, the output
        coding (fitted on the training rows) and fresh networks set up for them."""
        Xt, Yt = data.train_arrays()
        Xv, Yv = data.validation()
        self.n_in_, self.n_out_ = int(data.n_in), int(data.n_out)
        if len(Xt) < 2:
            raise BackendError(f"{self.name}: need at least 2 training rows, got {len(Xt)}")
        self.coding_ = self._make_coding(Yt, Xt)
        self._build()
        return Xt, Yt, Xv, Yv

    def state(self) -> dict[str, Any]:
        return {"n_in": self.n_in_, "n_out": self.n_out_, "coding": self.coding_.kind}

    def save(self, directory: Path) -> list[str]:
        save_tensors(Path(directory) / self.weights_file, self.nets_, self.coding_.arrays())
        return [self.weights_file]

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], state: dict[str, Any]) -> Any:
        self = cls(**params)
        self.n_in_, self.n_out_ = int(state["n_in"]), int(state["n_out"])
        layers = self.params["layers"]
        if state.get("coding") != ("layers" if layers else "plain"):
            raise BackendError(f"{self.name}: the state's coding {state.get('coding')!r} does not match layers={layers}")
        # Build the networks for the recorded widths, then fill them (and the coding) from the file.
        self.coding_ = LayerCoding(layers) if layers else PlainCoding()
        if isinstance(self.coding_, LayerCoding):
            if self.n_out_ % layers:
                raise BackendError(f"{self.name}: {self.n_out_} outputs do not split into {layers} layers")
            self.coding_.voxels = self.n_out_ // layers
        self._build()
        arrays = load_tensors(Path(directory) / self.weights_file, self.nets_, what=self.name)
        self.coding_ = self._coding_from(arrays, state)
        for net in self.nets_.values():
            net.eval()
        return self
