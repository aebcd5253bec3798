"""Backend ``vae``: a conditional variational auto-encoder of ``p(y | x)``.

The outputs are coded as for the flow (:mod:`phasm.backends.generative`: plain, or layer energies
and shapes) and the whole code vector ``c`` is modelled at once: an encoder ``q(z | c, x)``, a
decoder ``p(c | z, x) = N(mu(z, x), sigma(z, x)^2)`` per component, trained on the evidence lower
bound (``beta`` weighs the KL term).  A sample draws ``z ~ N(0, I)`` and then ``c`` from the
decoder, both from the caller's ``numpy.random.Generator``.  It is the simpler, faster-to-train
alternative to ``flow``; its per-component Gaussian noise makes it blurrier where the outputs are
correlated beyond what the latent code carries.

Example
-------
>>> import numpy as np
>>> from phasm.train.data import ArrayData, Standardiser
>>> rng = np.random.default_rng(7)
>>> X = rng.uniform(1, 2, (1000, 1)); Y = X + 0.1 * rng.standard_normal((1000, 1))
>>> identity = Standardiser(np.zeros(1, np.float32), np.ones(1, np.float32))
>>> vae = VAEBackend(epochs=40, batch_size=100, lr=3e-3, hidden=32, latent=2, threads=1)
>>> _ = vae.fit(ArrayData(X, Y, val_fraction=0.2, y_norm=identity))
>>> ys = vae.sample(np.zeros((4000, 1), np.float32), rng=1)
>>> bool(abs(ys.std() - 0.1) < 0.03)
True
"""

from __future__ import annotations

import math

import numpy as np
import torch

from phasm.backends.base import BackendError, FitHistory, TrainingData
from phasm.backends.generative import LayerCoding
from phasm.backends.torch_generative import TorchGenerativeBackend, as_tensor, torch_threads, train_generator

LOG_SIGMA = (-7.0, 2.0)


def _mlp(n_in: int, hidden: int, n_out: int) -> torch.nn.Sequential:
    return torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, hidden),
                               torch.nn.SiLU(), torch.nn.Linear(hidden, n_out))


class VAEBackend(TorchGenerativeBackend):
    """Backend ``vae`` (see the module doc).

    Parameters
    ----------
    layers: group the outputs into this many layers (as for ``flow``); ``None``: plain.
    latent: size of the latent code; hidden: MLP width of encoder and decoder.
    beta: weight of the KL term of the loss.
    epochs, batch_size, lr, patience, max_seconds, seed, threads: as for ``flow``.
    """

    name = "vae"
    weights_file = "vae.safetensors"
    requires = ("torch", "safetensors")
    extra = "torch"

    def __init__(self, layers: int | None = None, latent: int = 16, hidden: int = 256, beta: float = 1.0,
                 epochs: int = 200, batch_size: int = 128, lr: float = 1e-3, patience: int | None = 20,
                 max_seconds: float | None = None, seed: int = 0, threads: int | None = None) -> None:
        for name, value in (("latent", latent), ("hidden", hidden), ("epochs", epochs), ("batch_size", batch_size)):
            if int(value) < 1:
                raise BackendError(f"vae: {name} must be >= 1, got {value}")
        if layers is not None and int(layers) < 1:
            raise BackendError(f"vae: layers must be >= 1 or None, got {layers}")
        if not beta > 0 or not lr > 0:
            raise BackendError(f"vae: beta and lr must be > 0, got beta={beta}, lr={lr}")
        super().__init__(layers=None if layers is None else int(layers), latent=int(latent), hidden=int(hidden),
                         beta=float(beta), epochs=int(epochs), batch_size=int(batch_size), lr=float(lr),
                         patience=None if patience is None else int(patience),
                         max_seconds=None if max_seconds is None else float(max_seconds), seed=int(seed),
                         threads=None if threads is None else int(threads))

    @classmethod
    def library_version(cls) -> str:
        return torch.__version__

    @property
    def _code_dim(self) -> int:
        c = self.coding_
        return c.layers * (1 + c.voxels) if isinstance(c, LayerCoding) else self.n_out_

    def _build(self) -> None:
        torch.manual_seed(self.params["seed"])
        p, d = self.params, self._code_dim
        self.nets_ = {"encoder": _mlp(d + self.n_in_, p["hidden"], 2 * p["latent"]),
                      "decoder": _mlp(p["latent"] + self.n_in_, p["hidden"], 2 * d)}

    def _code(self, Y: np.ndarray, X: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        if isinstance(self.coding_, LayerCoding):
            E, S, _ = self.coding_.encode(Y, X, rng)
            return np.concatenate([E, S.reshape(len(S), -1)], axis=1)
        return self.coding_.encode(Y, X, rng)

    def _uncode(self, C: np.ndarray, X: np.ndarray) -> np.ndarray:
        if isinstance(self.coding_, LayerCoding):
            L = self.coding_.layers
            return self.coding_.decode(C[:, :L], C[:, L:], X)
        return self.coding_.decode(C, X)

    def _decoder(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.nets_["decoder"](torch.cat([z, x], dim=1))
        mu, log_sigma = out.chunk(2, dim=1)
        return mu, log_sigma.clamp(*LOG_SIGMA)

    def _loss(self, c: torch.Tensor, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """Negative ELBO per row (Gaussian decoder, standard normal prior)."""
        m, log_var = self.nets_["encoder"](torch.cat([c, x], dim=1)).chunk(2, dim=1)
        log_var = log_var.clamp(-12.0, 6.0)
        eps = torch.randn_like(m) if noise is None else noise
        z = m + torch.exp(0.5 * log_var) * eps
        mu, log_sigma = self._decoder(z, x)
        nll = (0.5 * ((c - mu) / torch.exp(log_sigma)) ** 2 + log_sigma + 0.5 * math.log(2 * math.pi)).sum(1)
        kl = 0.5 * (m * m + torch.exp(log_var) - 1.0 - log_var).sum(1)
        return nll + self.params["beta"] * kl

    def fit(self, data: TrainingData, *, verbose: bool = False) -> FitHistory:
        p = self.params
        Xt, Yt, Xv, Yv = self._begin_fit(data)
        rng = np.random.default_rng(p["seed"])
        x, xv = as_tensor(Xt, torch.device("cpu")), as_tensor(Xv, torch.device("cpu"))
        coded: dict[str, torch.Tensor] = {}
        cv = as_tensor(self._code(Yv, Xv, np.random.default_rng(1)), torch.device("cpu")) if len(Yv) else None
        val_noise = torch.from_numpy(np.random.default_rng(2).standard_normal((len(Xv), p["latent"]), dtype=np.float32))

        def encode(epoch: int) -> None:
            coded["c"] = as_tensor(self._code(Yt, Xt, rng), torch.device("cpu"))

        def loss(idx: np.ndarray, train: bool) -> torch.Tensor:
            i = torch.from_numpy(idx)
            return self._loss(coded["c"][i], x[i], None).mean()

        def val() -> float:
            assert cv is not None  # called only with validation rows
            return float(self._loss(cv, xv, val_noise).mean())

        with torch_threads(p["threads"]):
            hist = train_generator(list(self.nets_.values()), loss, n_train=len(Xt), n_val=len(Xv), epochs=p["epochs"],
                                   batch_size=p["batch_size"], lr=p["lr"], seed=p["seed"], patience=p["patience"],
                                   max_seconds=p["max_seconds"], val_loss=val, on_epoch=encode, verbose=verbose)
        hist.notes["coding"] = self.coding_.kind
        return hist

    def _sample(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        d, k = self._code_dim, self.params["latent"]
        noise = rng.standard_normal((len(X), k + d), dtype=np.float32)
        with torch.inference_mode():
            mu, log_sigma = self._decoder(torch.from_numpy(noise[:, :k]), torch.from_numpy(X))
            C = (mu + torch.exp(log_sigma) * torch.from_numpy(noise[:, k:])).numpy()
        return self._uncode(C, X)
