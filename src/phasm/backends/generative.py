"""Generative backends: a model of the *distribution* of a stochastic function's outputs given its inputs.

A stochastic function (a shower simulation, a random walk) answers the same inputs differently on
every call, so a regression to the mean is the wrong model of it.  A generative backend learns
``p(y | x)`` and answers each row with a fresh sample: :meth:`GenerativeBackend.sample` draws from a
``numpy.random.Generator`` (reproducible), :meth:`GenerativeBackend.predict` from the backend's own
stream (a new sample per call).  Backends declare ``stochastic = True``.

Unlike regression backends, generative backends receive the outputs in the user's units (the trainer
gives them an identity output normalisation): their *output coding* — the parameterisation below —
must act on raw values (logarithms of energies, sums over layers), and standardises internally.

Output codings
--------------
:class:`PlainCoding`
    every output column standardised; the model learns their joint distribution directly.
:class:`LayerCoding` (``layers=L``)
    for non-negative outputs made of ``L`` equal groups (a calorimeter's layers of voxels, in the
    order of the output array's first axis).  A shower of thousands of voxels is coded, as CaloFlow
    does, as (1) the ``L`` layer energies: the logarithm of their total, then how it is shared out
    (:func:`energy_codes`) and (2) per layer, the normalised shape ``log(e_lv / e_l)``.  Layer energies carry the response and the resolution, which
    must be right to a few percent, and are few, so a model learns them well from thousands of
    examples; a shape is a distribution over voxels that varies slowly with depth and energy, so one
    model shared by all layers (told which layer it draws) learns it from ``L`` times as many
    examples.  Exact zeros (voxels under the readout threshold, empty layers) are common.  The
    threshold is taken as the smallest non-zero value in the training data, and a zero is coded
    as what it is, an unknown value under the threshold: log-uniform over the decade below it
    (fresh noise every epoch), which keeps every code's distribution continuous, without spikes
    a flow cannot fit.  Decoding multiplies each layer's energy by its shape, sets values under
    the threshold to zero, and scales a layer's surviving values to sum to its energy.

Example
-------
>>> import numpy as np
>>> Y = np.random.default_rng(0).gamma(2.0, 1.0, (500, 3, 4)).reshape(500, 12)
>>> Y[Y < 0.3] = 0.0
>>> X = np.zeros((500, 1))                               # the (standardised) inputs
>>> coding = LayerCoding(layers=3).fit(Y, X)
>>> E, S, filled = coding.encode(Y, X, np.random.default_rng(1))
>>> E.shape, S.shape
((500, 3), (500, 3, 4))
>>> back = coding.decode(E, S, X).reshape(500, 3, 4)
>>> bool(np.allclose(back.sum(2), Y.reshape(500, 3, 4).sum(2), rtol=1e-4))    # layer energies exact
True
>>> float(np.mean((back > 0) == (Y.reshape(500, 3, 4) > 0))) > 0.98            # zeros where they were
True
"""

from __future__ import annotations

from itertools import combinations_with_replacement
from typing import Any, ClassVar

import numpy as np

from phasm.backends.base import Backend
from phasm.backends.lattice import Lattice, detect_lattice
from phasm.errors import BackendError

__all__ = ["GenerativeBackend", "LayerCoding", "PlainCoding", "as_generator"]


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a generator, a seed, or ``None`` (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise BackendError(f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def _scale(std: np.ndarray) -> np.ndarray:
    return np.where(std > 1e-12, std, 1.0).astype(np.float32)


def polynomial_degree(n_in: int) -> int:
    """Degree of the centring polynomial for ``n_in`` inputs (its number of terms stays small).

    Degree 5 for one input: a shower's log-energy over a factor 10 of incident energy is fitted to
    1.5% by a quintic, against 7% by a cubic, which is more than the resolution itself.
    """
    return 5 if n_in == 1 else 3 if n_in <= 3 else 2 if n_in <= 10 else 1


def polynomial_features(X: np.ndarray, degree: int) -> np.ndarray:
    """``[1, x_i, x_i x_j, ...]`` up to ``degree`` of the (standardised) inputs ``X (n, n_in)``."""
    X = np.asarray(X, np.float64)
    cols = [np.ones(len(X))]
    for d in range(1, degree + 1):
        cols += [np.prod(X[:, list(c)], axis=1) for c in combinations_with_replacement(range(X.shape[1]), d)]
    return np.stack(cols, axis=1)


class Centring:
    """``(c - m(x)) / s(x)``: codes less their mean given the inputs, in units of their spread given the inputs.

    ``m`` and ``s^2`` are least-squares polynomials of the (standardised) inputs.  A narrow
    conditional distribution whose centre moves far with the inputs (a shower's total energy: 2-3%
    wide, over a factor 10 of incident energies, and narrower as the energy grows) is hard for a flow
    to place precisely; after centring, what is left to learn is the shape of the spread.
    """

    def fit(self, X: np.ndarray, C: np.ndarray) -> "Centring":
        self.degree = polynomial_degree(X.shape[1])
        F = polynomial_features(X, self.degree)
        C = np.asarray(C, np.float64)
        gram = F.T @ F + 1e-8 * len(F) * np.eye(F.shape[1])
        # kept at float32 precision, as saved: a loaded model draws exactly what the trained one did
        self.beta = np.linalg.solve(gram, F.T @ C).astype(np.float32).astype(np.float64)
        R2 = (C - F @ self.beta) ** 2
        self.gamma = np.linalg.solve(gram, F.T @ R2).astype(np.float32).astype(np.float64)
        self.floor = (1e-4 * R2.mean(0) + 1e-24).astype(np.float32).astype(np.float64)
        return self

    def _mean_scale(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        F = polynomial_features(X, self.degree)
        return F @ self.beta, np.sqrt(np.maximum(F @ self.gamma, self.floor))

    def transform(self, X: np.ndarray, C: np.ndarray) -> np.ndarray:
        m, s = self._mean_scale(X)
        return ((np.asarray(C, np.float64) - m) / s).astype(np.float32)

    def inverse(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        m, s = self._mean_scale(X)
        return np.asarray(Z, np.float64) * s + m

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.beta": self.beta.astype(np.float32), f"{prefix}.gamma": self.gamma.astype(np.float32),
                f"{prefix}.floor": self.floor.astype(np.float32)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str, n_in: int, dims: int) -> "Centring":
        self = cls()
        self.degree = polynomial_degree(n_in)
        n_feat = polynomial_features(np.zeros((1, n_in)), self.degree).shape[1]
        self.beta = _checked(arrays, f"{prefix}.beta", (n_feat, dims)).astype(np.float64)
        self.gamma = _checked(arrays, f"{prefix}.gamma", (n_feat, dims)).astype(np.float64)
        self.floor = _checked(arrays, f"{prefix}.floor", (dims,)).astype(np.float64)
        if not (self.floor > 0).all():
            raise BackendError(f"{prefix}.floor: must be positive")
        return self


class PlainCoding:
    """Every output column centred on its polynomial mean given the inputs (:class:`Centring`).

    Columns on a lattice (counts; :func:`~phasm.backends.lattice.detect_lattice`) are dequantised
    for training (``encode`` with an ``rng``) and rounded back onto it by ``decode``; a column never
    negative in the captures (counts, energies) is never negative in a sample (a flow's tail would be).
    """

    kind = "plain"

    def fit(self, Y: np.ndarray, X: np.ndarray) -> "PlainCoding":
        self.n_out = Y.shape[1]
        self.lattice = Lattice.of_columns(Y)
        self.nonnegative: np.ndarray = np.asarray((np.asarray(Y) >= 0).all(axis=0))
        self.centring = Centring().fit(X, np.asarray(Y, np.float64))
        return self

    def encode(self, Y: np.ndarray, X: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return self.centring.transform(X, self.lattice.dequantise(Y, rng))

    def decode(self, Z: np.ndarray, X: np.ndarray) -> np.ndarray:
        Y = self.lattice.round(self.centring.inverse(X, Z))
        return np.where(self.nonnegative, np.maximum(Y, 0.0), Y).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        return {**self.centring.arrays("coding.y"), "coding.lattice": self.lattice.to_array(),
                "coding.nonnegative": self.nonnegative.astype(np.float32)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], n_out: int, n_in: int) -> "PlainCoding":
        self = cls()
        self.n_out = n_out
        self.centring = Centring.from_arrays(arrays, "coding.y", n_in, n_out)
        self.lattice = _lattice_from(arrays, n_out)
        # models saved before the flag existed: no column known to be non-negative
        flag = _checked(arrays, "coding.nonnegative", (n_out,)) if "coding.nonnegative" in arrays else np.zeros(n_out)
        self.nonnegative = flag > 0.5
        return self


class LayerCoding:
    """Layer energies then normalised shapes (see the module doc); ``Y`` rows are ``layers`` equal groups."""

    kind = "layers"

    def __init__(self, layers: int) -> None:
        self.layers = int(layers)

    @property
    def cut(self) -> float:
        """Values under this are zeros: the threshold, or on a lattice the lower edge of the threshold's cell."""
        return float(self.zero_below) - 0.5 * self.lattice if self.lattice else float(self.zero_below) * (1 - 1e-5)

    def _dequantise(self, A: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """Zeros replaced by values below the cut, log-uniform over one decade (its middle without ``rng``);
        on a lattice, the other values spread uniformly over their cells (with ``rng``)."""
        u = 1.0 - rng.random(A.shape) if rng is not None else 0.5  # in (0, 1]: strictly below the cut
        above = A + self.lattice * (rng.random(A.shape) - 0.5) if self.lattice and rng is not None else A
        return np.where(A > 0, above, self.cut * 10.0 ** -u)

    def fit(self, Y: np.ndarray, X: np.ndarray) -> "LayerCoding":
        Y = np.asarray(Y, np.float64)
        n, n_out = Y.shape
        L = self.layers
        if L < 1 or n_out % L or n_out // L < 2:
            raise BackendError(f"layers={L}: the {n_out} outputs must split into layers of at least 2 values each")
        if (Y < 0).any():
            raise BackendError(f"layers={L}: the layer coding needs non-negative outputs; the smallest is {Y.min():.4g}")
        positive = Y[Y > 0]
        if positive.size == 0:
            raise BackendError("the layer coding needs some non-zero outputs; every training output is 0")
        self.n_out, self.voxels = n_out, n_out // L
        self.zero_below = np.float32(positive.min())  # the readout threshold, as seen in the data
        self.lattice = detect_lattice(positive)  # photo-electrons, ADC codes; 0: continuous
        a, s, filled = self._logs(Y, None)
        self.centring = Centring().fit(X, a)
        sm, ss = np.zeros((L, self.voxels)), np.ones((L, self.voxels))
        for layer in range(L):
            rows = s[filled[:, layer], layer]
            if len(rows):
                sm[layer], ss[layer] = rows.mean(0), rows.std(0)
        self.s_mean, self.s_scale = sm.astype(np.float32), _scale(ss)
        return self

    def _logs(self, Y: np.ndarray, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(Y)
        G = np.asarray(Y, np.float64).reshape(n, self.layers, self.voxels)
        Gd = self._dequantise(G, rng)
        e = np.where(G > 0, Gd, 0.0).sum(2)  # a layer's energy: its (dequantised) non-zero values
        filled = e > 0
        a = energy_codes(np.where(filled, e, self._dequantise(np.zeros_like(e), rng)))
        s = np.log(Gd / np.where(filled, e, Gd.sum(2))[..., None])
        return a, s, filled

    def encode(self, Y: np.ndarray, X: np.ndarray, rng: np.random.Generator | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Standardised layer-energy codes ``(n, L)``, shape codes ``(n, L, V)``, and which layers are non-empty.

        Zeros (values under the threshold) are coded as values below it, log-uniform over a decade:
        drawn from ``rng`` (training), or its middle without.
        """
        a, s, filled = self._logs(Y, rng)
        E = self.centring.transform(X, a)
        S = ((s - self.s_mean) / self.s_scale).astype(np.float32)
        return E, S, filled

    def decode(self, E: np.ndarray, S: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Raw outputs ``(n, n_out)``: each layer's energy times its shape, values under the threshold zero,
        the surviving values of a layer scaled to sum to its energy."""
        n = len(E)
        floor = np.float32(self.cut)
        e = energies_from_codes(self.centring.inverse(X, E))
        e = np.where(e < floor, 0.0, e).astype(np.float32)
        # float32 from here (the outputs' precision; a shower's 10^6 values in float64 took a quarter of sampling)
        logs = np.asarray(S, np.float32).reshape(n, self.layers, self.voxels) * self.s_scale + self.s_mean
        G = np.exp(np.minimum(logs, 0.0, out=logs))  # a voxel holds at most its layer's energy
        G *= e[..., None]
        # A layer with energy has a voxel over the threshold: if none is, its largest voxel takes it all.
        lost = ((G >= floor).sum(2) == 0) & (e > 0)
        if lost.any():
            i, j = np.nonzero(lost)
            G[i, j, np.argmax(G[i, j], axis=1)] = e[i, j]
        rows = np.arange(n)  # the showers still to settle
        for _ in range(self.voxels):  # zero what is under the threshold, scale the rest to the layer's energy
            part = G[rows]
            part *= part >= floor
            ksum = part.sum(2, keepdims=True)
            scale = e[rows, :, None] / np.where(ksum > 0, ksum, 1.0)
            part *= scale
            G[rows] = part
            # scaling up leaves nothing new under the threshold: only showers with a layer scaled down go again
            rows = rows[(scale < 1).any(axis=(1, 2))]
            rows = rows[((G[rows] > 0) & (G[rows] < floor)).any(axis=(1, 2))]
            if not len(rows):
                break
        if self.lattice:  # onto the lattice (in float64: k q as the captures hold it); over the cut: >= threshold
            k = np.round(G / np.float32(self.lattice))
            k[(G > 0) & (k < round(float(self.zero_below) / self.lattice))] = round(float(self.zero_below) / self.lattice)
            return (k.reshape(n, self.n_out).astype(np.float64) * self.lattice).astype(np.float32)
        return G.reshape(n, self.n_out).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        return {**self.centring.arrays("coding.e"), "coding.s_mean": self.s_mean, "coding.s_scale": self.s_scale,
                "coding.zero_below": np.array([self.zero_below], np.float32),
                "coding.lattice": Lattice(np.array([self.lattice])).to_array()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], n_out: int, layers: int, n_in: int) -> "LayerCoding":
        self = cls(layers)
        if layers < 1 or n_out % layers:
            raise BackendError(f"layer coding: {n_out} outputs do not split into {layers} layers")
        self.n_out, self.voxels = n_out, n_out // layers
        self.centring = Centring.from_arrays(arrays, "coding.e", n_in, layers)
        self.s_mean = _checked(arrays, "coding.s_mean", (layers, self.voxels))
        self.s_scale = _checked(arrays, "coding.s_scale", (layers, self.voxels))
        zero_below = _checked(arrays, "coding.zero_below", (1,))
        if not zero_below[0] > 0:
            raise BackendError("layer coding: its threshold must be positive")
        self.zero_below = np.float32(zero_below[0])
        self.lattice = float(_lattice_from(arrays, 1).spacing[0])
        if self.lattice and not self.lattice <= self.zero_below:
            raise BackendError(f"layer coding: its lattice spacing {self.lattice} exceeds its threshold {self.zero_below}")
        return self


def energy_codes(e: np.ndarray) -> np.ndarray:
    """Positive layer energies ``(n, L)`` -> ``[log total, logit(e_l / (e_l + ... + e_{L-1})) for l < L - 1]``.

    The total is one coordinate (its narrow distribution is the resolution, learnt directly, not as
    a sum of ``L`` wide ones); the rest says how it is shared out, layer after layer (stick breaking).

    >>> e = np.array([[1.0, 2.0, 1.0]])
    >>> bool(np.allclose(energies_from_codes(energy_codes(e)), e))
    True
    """
    rest = np.cumsum(e[:, ::-1], axis=1)[:, ::-1]  # e_l + ... + e_{L-1}
    u = e[:, :-1] / rest[:, :-1]
    return np.concatenate([np.log(rest[:, :1]), np.log(u) - np.log1p(-np.minimum(u, 1 - 1e-12))], axis=1)


def energies_from_codes(a: np.ndarray) -> np.ndarray:
    """Inverse of :func:`energy_codes`."""
    total = np.exp(a[:, 0])
    u = 1.0 / (1.0 + np.exp(-a[:, 1:]))
    keep = np.cumprod(np.concatenate([np.ones((len(a), 1)), 1.0 - u], axis=1), axis=1)  # share left before layer l
    share = keep * np.concatenate([u, np.ones((len(a), 1))], axis=1)
    return total[:, None] * share


def _lattice_from(arrays: dict[str, np.ndarray], n: int) -> Lattice:
    """The stored lattice spacings (models saved before lattices existed have none: continuous)."""
    if "coding.lattice" not in arrays:
        return Lattice(np.zeros(n))
    a = np.asarray(arrays["coding.lattice"], np.float32)
    if a.shape != (n, 2) or not np.isfinite(a).all():
        raise BackendError(f"coding.lattice: expected finite values of shape {(n, 2)}, got shape {a.shape}")
    try:
        return Lattice.from_array(a)
    except ValueError as e:
        raise BackendError(f"coding.lattice: {e}") from None


def _checked(arrays: dict[str, np.ndarray], key: str, shape: tuple[int, ...]) -> np.ndarray:
    if key not in arrays:
        raise BackendError(f"the weights have no {key!r}")
    a = np.asarray(arrays[key], np.float32)
    if a.shape != shape or not np.isfinite(a).all():
        raise BackendError(f"{key}: expected finite values of shape {shape}, got shape {a.shape}")
    if key.endswith("scale") and not (a > 0).all():
        raise BackendError(f"{key}: scales must be positive")
    return a


class GenerativeBackend(Backend):
    """Base of backends that model ``p(y | x)`` and answer with samples.

    Subclasses implement ``fit`` and ``_sample(X, rng)``.  ``predict`` draws from the backend's own
    stream, seeded by ``seed`` and advanced by every call (``reseed`` restarts it);
    ``sample(X, rng)`` draws from the caller's generator, so the same generator state gives the same
    answers.
    """

    stochastic: ClassVar[bool] = True

    def sample(self, X: np.ndarray, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """One sample ``(n, n_out)`` per row of standardised inputs ``X (n, n_in)``."""
        X = np.ascontiguousarray(X, np.float32)
        n_in = getattr(self, "n_in_", None)
        if n_in is None:
            raise BackendError(f"{self.name}: sample called before fit/load")
        if X.ndim != 2 or X.shape[1] != n_in:
            raise BackendError(f"{self.name}: X must be (n, {n_in}) float32, got {X.shape}")
        return self._sample(X, as_generator(rng))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """A fresh sample per row, from the backend's own stream."""
        stream = getattr(self, "_stream", None)
        if stream is None:
            stream = self._stream = np.random.default_rng(self.params.get("seed", 0))
        return self.sample(X, stream)

    def reseed(self, seed: int | None) -> None:
        """Restart the stream ``predict`` draws from."""
        self._stream = np.random.default_rng(seed)

    def _sample(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _make_coding(self, Y: np.ndarray, X: np.ndarray) -> PlainCoding | LayerCoding:
        layers = self.params.get("layers")
        return LayerCoding(int(layers)).fit(Y, X) if layers else PlainCoding().fit(Y, X)

    def _coding_from(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> PlainCoding | LayerCoding:
        layers = self.params.get("layers")
        n_out, n_in = int(state["n_out"]), int(state["n_in"])
        if layers:
            return LayerCoding.from_arrays(arrays, n_out, int(layers), n_in)
        return PlainCoding.from_arrays(arrays, n_out, n_in)
