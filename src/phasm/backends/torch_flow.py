"""Backend ``flow``: a conditional normalising flow of ``p(y | x)`` (the default generative backend).

Plain outputs: one :class:`~phasm.backends.torch_flows.ConditionalFlow` of all output columns given
the inputs.  Layered outputs (``layers=L``, see :class:`~phasm.backends.generative.LayerCoding`):
two flows, as CaloFlow does, and one autoregressive step over depth:

1. the *energy flows*: the total energy's code given the inputs (one dimension: the resolution,
   which must be right to a few percent, is learnt on its own), then how it is shared out among
   the ``L`` layers given the inputs and the total;
2. the *shape flow*: one layer's ``V`` shape codes given the inputs, all layer energies, which layer
   it is (one-hot) and the previous layer's shape codes.  It is shared by the layers (``L`` times the
   training examples) and, drawing the layers in order, carries the shower's lateral development
   (a displaced or wide early layer makes the next ones so) from layer to layer.

Sampling takes its normal noise from the caller's ``numpy.random.Generator``: the same generator
state gives the same showers.  Weights are one safetensors file with the coding's arrays.

Example
-------
>>> import numpy as np
>>> from phasm.train.data import ArrayData, Standardiser
>>> rng = np.random.default_rng(7)
>>> X = rng.uniform(1, 2, (1000, 1)); Y = X + 0.1 * rng.standard_normal((1000, 1))   # y ~ N(x, 0.1^2)
>>> identity = Standardiser(np.zeros(1, np.float32), np.ones(1, np.float32))   # generators see raw outputs
>>> data = ArrayData(X, Y, val_fraction=0.2, y_norm=identity)
>>> flow = FlowBackend(epochs=40, batch_size=100, lr=3e-3, hidden=32, flow_layers=2, threads=1)
>>> _ = flow.fit(data)
>>> x = data.x_norm.transform(np.full((4000, 1), 1.5))
>>> ys = flow.sample(x, rng=1)
>>> bool(abs(ys.mean() - 1.5) < 0.02 and abs(ys.std() - 0.1) < 0.02)
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from phasm.backends.base import BackendError, FitHistory, TrainingData
from phasm.backends.generative import LayerCoding, PlainCoding
from phasm.backends.torch_flows import ConditionalFlow
from phasm.backends.torch_generative import TorchGenerativeBackend, as_tensor, torch_threads, train_generator

SAMPLE_BATCH = 8192


class FlowBackend(TorchGenerativeBackend):
    """Backend ``flow``: conditional rational-quadratic spline flows (see the module doc).

    Parameters
    ----------
    layers: group the outputs into this many layers (layer energies, then shapes); ``None``: plain.
        ``fn.train()`` sets it from a non-negative output array's first axis.
    flow_layers, hidden, bins, bound: coupling layers, MLP width, spline bins, spline range (in
        standardised units) of the plain flow and the energy flows.
    shape_layers, shape_bins, shape_transform: coupling layers, spline bins (``None``: ``bins``; the
        shape flow's cost grows with them, the energy flows' hardly) and transform (``"spline"``, or
        ``"affine"``: two to three times cheaper to sample, far less expressive: on the calorimeter
        example's showers a classifier told affine shapes from simulated ones with AUC 0.996, spline
        ones with 0.63) of the shape flow.
    epochs, batch_size, lr, patience, max_seconds: training (Adam, cosine schedule, early stopping on
        the validation negative log-likelihood).
    seed: initial weights, batch order, dequantisation noise, and the stream ``predict`` draws from.
    threads: torch CPU threads while training (``None``: torch's default).
    """

    name = "flow"
    weights_file = "flow.safetensors"
    requires = ("torch", "safetensors")
    extra = "torch"

    def __init__(self, layers: int | None = None, flow_layers: int = 6, hidden: int = 128, bins: int = 8,
                 bound: float = 5.0, shape_layers: int = 4, shape_transform: str = "spline",
                 shape_bins: int | None = None, epochs: int = 200, batch_size: int = 128, lr: float = 1e-3,
                 patience: int | None = 20, max_seconds: float | None = None, seed: int = 0,
                 threads: int | None = None) -> None:
        for name, value in (("flow_layers", flow_layers), ("hidden", hidden), ("bins", bins), ("epochs", epochs),
                            ("batch_size", batch_size)):
            if int(value) < 1:
                raise BackendError(f"flow: {name} must be >= 1, got {value}")
        if layers is not None and int(layers) < 1:
            raise BackendError(f"flow: layers must be >= 1 or None, got {layers}")
        if not bound > 0 or not lr > 0:
            raise BackendError(f"flow: bound and lr must be > 0, got bound={bound}, lr={lr}")
        if shape_transform not in ("affine", "spline", "mixed") or int(shape_layers) < 1:
            raise BackendError(f"flow: shape_transform must be 'spline', 'mixed' or 'affine' and shape_layers >= 1, got "
                               f"{shape_transform!r} and {shape_layers}")
        if shape_bins is not None and int(shape_bins) < 1:
            raise BackendError(f"flow: shape_bins must be >= 1 or None, got {shape_bins}")
        super().__init__(layers=None if layers is None else int(layers), flow_layers=int(flow_layers),
                         hidden=int(hidden), bins=int(bins), bound=float(bound), shape_layers=int(shape_layers),
                         shape_bins=None if shape_bins is None else int(shape_bins),
                         shape_transform=shape_transform, epochs=int(epochs),
                         batch_size=int(batch_size), lr=float(lr), patience=None if patience is None else int(patience),
                         max_seconds=None if max_seconds is None else float(max_seconds), seed=int(seed),
                         threads=None if threads is None else int(threads))

    @classmethod
    def library_version(cls) -> str:
        return torch.__version__

    # -- networks -----------------------------------------------------------

    def _flow(self, dim: int, context: int, shape: bool = False) -> ConditionalFlow:
        p = self.params
        if shape:
            bins = p.get("shape_bins") or p["bins"]
            return ConditionalFlow(dim, context, layers=p["shape_layers"], hidden=p["hidden"], bins=bins,
                                   bound=p["bound"], transform=p["shape_transform"])
        return ConditionalFlow(dim, context, layers=p["flow_layers"], hidden=p["hidden"], bins=p["bins"], bound=p["bound"])

    def _build(self) -> None:
        torch.manual_seed(self.params["seed"])
        if isinstance(self.coding_, LayerCoding):
            L, V = self.coding_.layers, self.coding_.voxels
            self.nets_ = {"total": self._flow(1, self.n_in_), "shares": self._flow(L - 1, self.n_in_ + 1),
                          "shape": self._flow(V, self.n_in_ + 2 * L + V, True)}
        else:
            self.nets_ = {"plain": self._flow(self.n_out_, self.n_in_)}

    def _shape_context(self, X: torch.Tensor, E: torch.Tensor, layer: int, prev: torch.Tensor) -> torch.Tensor:
        onehot = X.new_zeros(len(X), E.shape[1])
        onehot[:, layer] = 1.0
        return torch.cat([X, E, onehot, prev], dim=1)

    # -- learning -----------------------------------------------------------

    def fit(self, data: TrainingData, *, verbose: bool = False) -> FitHistory:
        p = self.params
        Xt, Yt, Xv, Yv = self._begin_fit(data)
        with torch_threads(p["threads"]):
            if isinstance(self.coding_, LayerCoding):
                hist = self._fit_layers(Xt, Yt, Xv, Yv, verbose)
            else:
                hist = self._fit_plain(Xt, Yt, Xv, Yv, verbose)
        hist.notes["coding"] = self.coding_.kind
        return hist

    def _train(self, loss: Any, n_train: int, n_val: int, val: Any, on_epoch: Any, verbose: bool) -> FitHistory:
        p = self.params
        return train_generator(list(self.nets_.values()), loss, n_train=n_train, n_val=n_val, epochs=p["epochs"],
                               batch_size=p["batch_size"], lr=p["lr"], seed=p["seed"], patience=p["patience"],
                               max_seconds=p["max_seconds"], val_loss=val, on_epoch=on_epoch, verbose=verbose)

    def _fit_plain(self, Xt: np.ndarray, Yt: np.ndarray, Xv: np.ndarray, Yv: np.ndarray, verbose: bool) -> FitHistory:
        flow, dev = self.nets_["plain"], torch.device("cpu")
        coding = self.coding_
        assert isinstance(coding, PlainCoding)
        rng = np.random.default_rng(self.params["seed"])
        x, xv = as_tensor(Xt, dev), as_tensor(Xv, dev)
        yv = as_tensor(coding.encode(Yv, Xv, np.random.default_rng(1)), dev)
        coded: dict[str, torch.Tensor] = {}

        def encode(epoch: int) -> None:  # fresh dequantisation noise every epoch (outputs on a lattice)
            if "y" not in coded or coding.lattice.any:
                coded["y"] = as_tensor(coding.encode(Yt, Xt, rng), dev)

        def loss(idx: np.ndarray, train: bool) -> torch.Tensor:
            i = torch.from_numpy(idx)
            return -flow.log_prob(coded["y"][i], x[i]).mean()

        def val() -> float:
            return float(-flow.log_prob(yv, xv).mean())

        return self._train(loss, len(Xt), len(Xv), val, encode, verbose)

    def _layer_nll(self, X: torch.Tensor, E: torch.Tensor, S: torch.Tensor, filled: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood per row: total and shares of the energy, shapes of the non-empty layers."""
        nll = -self.nets_["total"].log_prob(E[:, :1], X) - self.nets_["shares"].log_prob(E[:, 1:], torch.cat([X, E[:, :1]], 1))
        L, V = S.shape[1], S.shape[2]
        prev = torch.cat([S.new_zeros(len(S), 1, V), S[:, :-1]], dim=1)
        onehot = torch.eye(L, dtype=S.dtype).expand(len(S), L, L)
        ctx = torch.cat([X[:, None, :].expand(-1, L, -1), E[:, None, :].expand(-1, L, -1), onehot, prev], dim=2)
        lp = self.nets_["shape"].log_prob(S.reshape(-1, V), ctx.reshape(len(S) * L, -1)).view(len(S), L)
        return nll - (lp * filled).sum(1)

    def _fit_layers(self, Xt: np.ndarray, Yt: np.ndarray, Xv: np.ndarray, Yv: np.ndarray, verbose: bool) -> FitHistory:
        coding: LayerCoding = self.coding_  # type: ignore[assignment]
        dev = torch.device("cpu")
        rng = np.random.default_rng(self.params["seed"])
        x = as_tensor(Xt, dev)
        coded: dict[str, torch.Tensor] = {}

        def encode(epoch: int) -> None:  # fresh dequantisation noise every epoch
            E, S, filled = coding.encode(Yt, Xt, rng)
            coded.update(E=as_tensor(E, dev), S=as_tensor(S, dev), F=as_tensor(filled, dev))

        Ev, Sv, Fv = coding.encode(Yv, Xv, np.random.default_rng(1)) if len(Yv) else (None, None, None)
        xv = as_tensor(Xv, dev)

        def loss(idx: np.ndarray, train: bool) -> torch.Tensor:
            i = torch.from_numpy(idx)
            return self._layer_nll(x[i], coded["E"][i], coded["S"][i], coded["F"][i]).mean()

        def val() -> float:
            assert Ev is not None and Sv is not None and Fv is not None  # called only with validation rows
            return float(self._layer_nll(xv, as_tensor(Ev, dev), as_tensor(Sv, dev), as_tensor(Fv, dev)).mean())

        return self._train(loss, len(Xt), len(Xv), val, encode, verbose)

    # -- sampling -----------------------------------------------------------

    def _sample(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.empty((len(X), self.n_out_), np.float32)
        with torch.inference_mode():
            for s in range(0, len(X), SAMPLE_BATCH):
                out[s:s + SAMPLE_BATCH] = self._sample_batch(X[s:s + SAMPLE_BATCH], rng)
        return out

    def _sample_batch(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = torch.from_numpy(X)
        if not isinstance(self.coding_, LayerCoding):
            z = torch.from_numpy(rng.standard_normal((len(X), self.n_out_), dtype=np.float32))
            return self.coding_.decode(self.nets_["plain"].sample(z, x).numpy(), X)
        L, V = self.coding_.layers, self.coding_.voxels
        # A shower takes hundreds of normals: drawn by torch (2.4x faster than numpy's), seeded from `rng`, so
        # the same generator state still gives the same showers.
        noise = torch.randn(len(X), L + L * V, generator=torch.Generator().manual_seed(int(rng.integers(2**63))))
        total = self.nets_["total"].sample(noise[:, :1], x)
        E = torch.cat([total, self.nets_["shares"].sample(noise[:, 1:L], torch.cat([x, total], 1))], 1)
        S = torch.empty(len(X), L, V)
        prev = x.new_zeros(len(X), V)
        shape = self.nets_["shape"]
        for layer in range(L):
            prev = shape.sample(noise[:, L + layer * V:L + (layer + 1) * V], self._shape_context(x, E, layer, prev))
            S[:, layer] = prev
        return self.coding_.decode(E.numpy(), S.numpy(), X)

    # -- persistence --------------------------------------------------------
