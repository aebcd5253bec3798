"""Rows for calibration, in batches: from arrays or straight from a capture store.

Calibration never needs every row at once.  It needs, over the training rows,
per-feature statistics (range, mean, std: one streamed pass) and a seeded
sample of bounded size (the domain gate's reference rows and the rows that
propose thresholds); over the calibration rows, one streamed pass that keeps
three numbers per row (score, region band, miss).  :class:`ArrayRows` and
:class:`StoreRows` give the same batches of finite raw rows, so a store larger
than memory calibrates exactly as its in-memory copy would.

The calibration split is a seeded draw per row in store order
(:func:`calibration_mask`), drawn in chunks from one random stream, so it is
the same whichever way the rows are read.

Example
-------
>>> import numpy as np
>>> rows = ArrayRows(np.arange(10.0).reshape(5, 2), np.ones((5, 1)))
>>> sample = TrainingSample.collect(rows, max_rows=3, seed=0)
>>> sample.n, sample.low.tolist(), sample.high.tolist(), len(sample.X)
(5, [0.0, 1.0], [8.0, 9.0], 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from phasm.errors import GateError

MASK_CHUNK = 1 << 14


def calibration_mask(n: int, fraction: float, seed: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Boolean mask of calibration rows ``[start, stop)`` of ``n``: each row independently with probability ``fraction``.

    Drawn from one seeded stream in chunks of ``MASK_CHUNK`` rows, so any slice equals
    the same slice of the whole mask (a store is split block by block without holding
    one number per row).
    """
    if not 0.0 < fraction < 1.0:
        raise GateError(f"calibration_fraction must be in (0, 1), got {fraction}")
    stop = n if stop is None else min(stop, n)
    out = np.empty(max(stop - start, 0), bool)
    first = start // MASK_CHUNK
    for c in range(first, (stop - 1) // MASK_CHUNK + 1 if stop > start else first):
        lo = c * MASK_CHUNK
        draw = np.random.default_rng([seed, 0x5EED, c]).random(min(MASK_CHUNK, n - lo)) < fraction
        a, b = max(start, lo), min(stop, lo + MASK_CHUNK)
        out[a - start : b - start] = draw[a - lo : b - lo]
    return out


def finite(X: np.ndarray, Y: np.ndarray | None = None) -> np.ndarray:
    ok = np.isfinite(X.reshape(len(X), -1)).all(1)
    if Y is not None:
        ok &= np.isfinite(Y.reshape(len(Y), -1)).all(1)
    return ok


class ArrayRows:
    """Rows of in-memory matrices ``X (n, n_in)``, ``Y (n, n_out)`` (``Y`` optional), one batch by default.

    ``rows``: boolean mask of the rows to use.  Non-finite rows are dropped.
    """

    def __init__(self, X: np.ndarray, Y: np.ndarray | None = None, rows: np.ndarray | None = None,
                 batch_rows: int | None = None) -> None:
        self.X = np.asarray(X)
        self.Y = None if Y is None else np.asarray(Y)
        if self.Y is not None and len(self.Y) != len(self.X):
            raise GateError(f"rows: X has {len(self.X)} rows, Y has {len(self.Y)}")
        self.rows = rows
        self.n_rows = int(len(self.X) if rows is None else np.count_nonzero(rows))
        self.batch_rows = int(batch_rows or max(len(self.X), 1))

    def batches(self) -> Iterator[tuple[np.ndarray, np.ndarray | None, np.ndarray]]:
        """``(X, Y, position)``: finite rows as float64, and their positions among the used rows."""
        base = 0
        for s in range(0, len(self.X), self.batch_rows):
            X = self.X[s : s + self.batch_rows]
            Y = None if self.Y is None else self.Y[s : s + self.batch_rows]
            if self.rows is not None:
                sel = self.rows[s : s + self.batch_rows]
                X, Y = X[sel], (None if Y is None else Y[sel])
            ok = finite(X, Y)
            pos = base + np.flatnonzero(ok)
            base += len(X)
            yield (np.asarray(X[ok], np.float64), None if Y is None else np.asarray(Y[ok], np.float64), pos)


class StoreRows:
    """Rows of a :class:`~phasm.store.CaptureStore`, read ``batch_rows`` at a time.

    ``calibration``: ``(fraction, seed, which)``: keep the calibration rows (``which=True``)
    or the rest (``which=False``) of :func:`calibration_mask`; ``None``: every row.
    """

    def __init__(self, store: Any, calibration: tuple[float, int, bool] | None = None,
                 batch_rows: int = 65536) -> None:
        self.store = store
        self.total = len(store)
        self.calibration = calibration
        self.batch_rows = max(int(batch_rows), 1)
        if calibration is None:
            self.n_rows = self.total
        else:
            frac, seed, which = calibration
            self.n_rows = sum(int(np.count_nonzero(self._mask(s, s + MASK_CHUNK) == which))
                              for s in range(0, self.total, MASK_CHUNK))

    def _mask(self, start: int, stop: int) -> np.ndarray:
        frac, seed, _ = self.calibration  # type: ignore[misc]
        return calibration_mask(self.total, frac, seed, start, stop)

    def batches(self) -> Iterator[tuple[np.ndarray, np.ndarray | None, np.ndarray]]:
        base = 0
        for s in range(0, self.total, self.batch_rows):
            X, Y = self.store.matrices(s, s + self.batch_rows, dtype=np.float64)
            if self.calibration is not None:
                sel = self._mask(s, s + len(X)) == self.calibration[2]
                X, Y = X[sel], Y[sel]
            ok = finite(X, Y)
            pos = base + np.flatnonzero(ok)
            base += len(X)
            yield X[ok], Y[ok], pos


@dataclass
class TrainingSample:
    """What calibration needs of the training rows: per-feature statistics over all finite rows
    (``n``, ``low``, ``high``, ``mean``, ``std``) and a seeded sample ``X``, ``Y`` of at most ``max_rows``
    rows (all of them, in order, when there are no more)."""

    n: int
    low: np.ndarray
    high: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    X: np.ndarray
    Y: np.ndarray | None

    @classmethod
    def collect(cls, rows: Any, max_rows: int, seed: int) -> "TrainingSample":
        """One pass over ``rows`` (:class:`ArrayRows` or :class:`StoreRows`)."""
        n_max = rows.n_rows
        pick = None
        if n_max > max_rows:  # positions among the used rows, chosen before reading (non-finite ones drop out)
            pick = np.sort(np.random.default_rng([seed, 0x5A3F]).choice(n_max, max_rows, replace=False))
        n = 0
        mean: np.ndarray | None = None
        m2 = low = high = np.zeros(0)
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        for X, Y, pos in rows.batches():
            if not len(X):
                continue
            k = len(X)
            bm = X.mean(0)
            bm2 = ((X - bm) ** 2).sum(0)
            if mean is None:
                mean, m2, low, high = bm, bm2, X.min(0), X.max(0)
            else:
                tot = n + k
                delta = bm - mean
                mean = mean + delta * k / tot
                m2 = m2 + bm2 + delta**2 * n * k / tot
                low, high = np.minimum(low, X.min(0)), np.maximum(high, X.max(0))
            n += k
            sel = slice(None) if pick is None else np.isin(pos, pick[(pick >= pos[0]) & (pick <= pos[-1])])
            xs.append(X[sel])
            if Y is not None:
                ys.append(Y[sel])
        if n == 0 or mean is None:
            raise GateError("calibration: no finite training rows")
        std = np.sqrt(np.asarray(m2) / n)
        X = np.concatenate(xs)
        return cls(n, low, high, mean, std, X, np.concatenate(ys) if ys else None)  # type: ignore[arg-type]
