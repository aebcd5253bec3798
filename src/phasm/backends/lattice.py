"""Outputs on a lattice: counts, photo-electrons, ADC codes.

Many stochastic functions answer on a lattice: a Poisson count is an integer, a calorimeter cell read
with photo-statistics holds a whole number of photo-electrons (multiples of ``1 / pe_per_mev``), a
digitiser returns ADC codes.  A continuous generator answers between the lattice points, which is
a wrong *kind* of answer (2.37 photo-electrons) and one a classifier spots at once.  A generative
backend therefore finds the lattice in the training outputs (:func:`detect_lattice`), learns a
continuous density from them dequantised (each value spread uniformly over its lattice cell, fresh
noise every epoch: the density then integrates over each cell to the value's probability) and
rounds its samples back onto the lattice (:meth:`Lattice.round`), which is the exact inverse: a
model of the dequantised density, rounded, is a model of the discrete law.

Example
-------
>>> import numpy as np
>>> counts = np.random.default_rng(0).poisson(3.0, 2000).astype(float)
>>> q = detect_lattice(counts)
>>> q
1.0
>>> lat = Lattice(np.array([q]))
>>> noisy = lat.dequantise(counts[:, None], np.random.default_rng(1))
>>> bool((np.abs(noisy[:, 0] - counts) <= 0.5).all()), bool((lat.round(noisy)[:, 0] == counts).all())
(True, True)
>>> detect_lattice(np.random.default_rng(0).normal(size=2000))     # continuous: no lattice
0.0
"""

from __future__ import annotations

import numpy as np

__all__ = ["Lattice", "detect_lattice"]

#: at most this share of the non-zero values may be distinct for them to count as a lattice
MAX_DISTINCT_SHARE = 0.5
#: values closer to a lattice point than this (in cells, besides float32 rounding) lie on it
TOLERANCE = 1e-3


def detect_lattice(values: np.ndarray) -> float:
    """The spacing ``q`` of a lattice ``{k q}`` that every finite value lies on, ``0.0`` if there is none.

    A lattice is claimed only when values repeat (at most half of the non-zero values distinct: a
    continuous float32 sample also lies on a fine lattice, of its rounding, but hardly repeats) and
    every value is within float32 rounding of a multiple of ``q``, the smallest gap between distinct
    values refined by least squares over the values.
    """
    a = np.abs(np.asarray(values, np.float64).ravel())
    a = a[np.isfinite(a) & (a > 0)]
    if a.size < 20:
        return 0.0
    distinct = np.unique(a)
    if len(distinct) > MAX_DISTINCT_SHARE * a.size:
        return 0.0
    if len(distinct) == 1:
        return float(distinct[0])
    q = float(np.diff(distinct[:64]).min())  # the smallest values' gaps carry the least rounding
    for reach in (64.0, 4096.0, np.inf):  # refine q on ever larger multiples, where its error would grow
        near = distinct[distinct <= distinct[0] + reach * q]  # never empty: ADC codes may start far from 0
        k = np.round(near / q)
        if (k < 1).any():
            return 0.0
        q = float((near * k).sum() / (k * k).sum())
    k = np.round(distinct / q)
    slack = TOLERANCE + 4 * np.finfo(np.float32).eps * k
    return q if bool((np.abs(distinct / q - k) <= slack).all()) else 0.0


class Lattice:
    """Per-column lattice spacings ``q (n_out,)``; ``0`` marks a continuous column.

    :meth:`dequantise` spreads each value uniformly over its cell ``[v - q/2, v + q/2)``;
    :meth:`round` takes a value to its nearest lattice point.
    """

    def __init__(self, spacing: np.ndarray) -> None:
        self.spacing = np.asarray(spacing, np.float64).ravel()
        if not (np.isfinite(self.spacing).all() and (self.spacing >= 0).all()):
            raise ValueError(f"lattice spacing: expected finite values >= 0, got {self.spacing}")
        self.on = self.spacing > 0

    @classmethod
    def of_columns(cls, Y: np.ndarray) -> "Lattice":
        """One spacing per column of ``Y (n, n_out)``, found by :func:`detect_lattice`."""
        Y = np.asarray(Y, np.float64)
        return cls(np.array([detect_lattice(Y[:, j]) for j in range(Y.shape[1])]))

    def to_array(self) -> np.ndarray:
        """``(n_out, 2)`` float32: each spacing as a float32 and its remainder, so the float64 spacing
        survives a float32 weights file (generated values then match the captured ones to the bit)."""
        hi = self.spacing.astype(np.float32)
        return np.stack([hi, (self.spacing - hi.astype(np.float64)).astype(np.float32)], axis=1)

    @classmethod
    def from_array(cls, a: np.ndarray) -> "Lattice":
        """Inverse of :meth:`to_array`."""
        a = np.asarray(a, np.float32)
        if a.ndim != 2 or a.shape[1] != 2:
            raise ValueError(f"lattice array: expected shape (n, 2), got {a.shape}")
        return cls(a[:, 0].astype(np.float64) + a[:, 1].astype(np.float64))

    @property
    def any(self) -> bool:
        return bool(self.on.any())

    def dequantise(self, Y: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """``Y`` plus uniform noise over each lattice cell (its middle, i.e. nothing, without ``rng``)."""
        Y = np.asarray(Y, np.float64)
        if not self.any or rng is None:
            return Y
        return Y + np.where(self.on, self.spacing, 0.0) * (rng.random(Y.shape) - 0.5)

    def round(self, Y: np.ndarray) -> np.ndarray:
        """``Y`` with lattice columns taken to their nearest lattice point."""
        Y = np.asarray(Y, np.float64)
        if not self.any:
            return Y
        q = np.where(self.on, self.spacing, 1.0)
        return np.where(self.on, np.round(Y / q) * q, Y)
