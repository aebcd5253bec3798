"""Checks of the Monte Carlo against shower theory: longitudinal profile, resolution; their plots.

- The mean longitudinal profile ``dE/dt`` (``t`` in radiation lengths of the cell mixture) is fitted
  with the gamma function ``t^(a-1) exp(-b t)`` (Longo's parameterisation, PDG eq. 34.35) by
  weighted least squares on its logarithm; the shower maximum ``t_max = (a - 1) / b`` is compared
  with ``ln(E / Ec) + C``, ``C = -0.5`` for electrons and ``+0.5`` for photons (PDG eq. 34.36).
- The resolution: in energy bins, the core width (interquartile range / 1.349) over the median of
  the read-out energy, fitted with ``(sigma/E)^2 = a^2 / E + b^2`` (stochastic and constant terms).

>>> import numpy as np
>>> rows = resolution_fit(np.repeat([10.0, 40.0], 400),
...                       np.r_[np.random.default_rng(0).normal(1.0, 0.1 / np.sqrt(10), 400),
...                             np.random.default_rng(1).normal(4.0, 4 * 0.1 / np.sqrt(40), 400)], 0.1, bins=2)
>>> abs(rows["a"] - 0.1) < 0.015
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

THEORY_C = {"e-": -0.5, "e+": -0.5, "gamma": 0.5}


def _bins(E: np.ndarray, bins: int) -> list[np.ndarray]:
    u = np.unique(E)
    if len(u) <= bins:
        return [E == v for v in u]
    edges = np.quantile(np.log(E), np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, np.log(E), side="right") - 1, 0, bins - 1)
    return [which == k for k in range(bins)]


def longitudinal_fit(E_gev: np.ndarray, cells: np.ndarray, cal: Any, *, particle: str = "e-", bins: int = 3) -> dict:
    """Shower maximum per energy bin from per-cell deposits ``(n, cells)``, with the theory's value."""
    t = (np.arange(cells.shape[1]) + 0.5) * cal.cell_x0
    Ec = cal.effective_critical_energy
    rows = []
    for m in _bins(np.asarray(E_gev), bins):
        prof = cells[m].mean(0)
        w = prof / prof.max()
        ok = w > 1e-3
        A = np.c_[np.ones(ok.sum()), np.log(t[ok]), -t[ok]] * w[ok, None]
        c, am1, b = np.linalg.lstsq(A, np.log(prof[ok]) * w[ok], rcond=None)[0]
        e = float(np.exp(np.mean(np.log(E_gev[m]))))
        rows.append({"energy_gev": e, "t_max": float(am1 / b), "a": float(am1 + 1), "b": float(b),
                     "theory": float(np.log(e * 1e3 / Ec) + THEORY_C[particle]),
                     "profile": (prof / prof.sum()).tolist()})
    return {"particle": particle, "depth_x0": t.tolist(), "rows": rows}


def resolution_fit(E_gev: np.ndarray, read_gev: np.ndarray, sampling_fraction: float, *, bins: int = 6) -> dict:
    """Relative core width of the calibrated energy per energy bin, and the fit ``a / sqrt(E) (+) b``."""
    rows = []
    for m in _bins(np.asarray(E_gev), bins):
        rec = read_gev[m] / sampling_fraction / E_gev[m]
        q75, q25 = np.percentile(rec, [75, 25])
        rows.append({"energy_gev": float(np.exp(np.mean(np.log(E_gev[m])))), "n": int(m.sum()),
                     "sigma_over_e": float((q75 - q25) / 1.349 / np.median(rec))})
    e = np.array([r["energy_gev"] for r in rows])
    s2 = np.array([r["sigma_over_e"] for r in rows]) ** 2
    (a2, b2), *_ = np.linalg.lstsq(np.c_[1 / e, np.ones_like(e)], s2, rcond=None)
    return {"a": float(np.sqrt(max(a2, 0.0))), "b": float(np.sqrt(max(b2, 0.0))), "rows": rows}


def resolution_by_bin(E_gev: np.ndarray, read_gev: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per energy bin ``[edges[i], edges[i+1])``: the core width (IQR / 1.349) over the median of
    ``read / E``, and its standard error (~1.36 sigma / sqrt(2 n) for a Gaussian core).

    >>> E = np.repeat([10.0, 40.0], 2000)
    >>> read = E * np.random.default_rng(0).normal(1.0, 0.1 / np.sqrt(E))
    >>> res, err = resolution_by_bin(E, read, np.array([5.0, 20.0, 50.0]))
    >>> bool(np.all(np.abs(res - 0.1 / np.sqrt([10.0, 40.0])) < 3 * err))
    True
    """
    E_gev, rec = np.asarray(E_gev, np.float64), np.asarray(read_gev, np.float64) / np.asarray(E_gev, np.float64)
    res, err = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        r = rec[(E_gev >= lo) & (E_gev < hi)] if hi < edges[-1] else rec[(E_gev >= lo) & (E_gev <= hi)]
        q75, q25 = np.percentile(r, [75, 25])
        res.append((q75 - q25) / 1.349 / np.median(r))
        err.append(1.36 * res[-1] / np.sqrt(2 * len(r)))
    return np.array(res), np.array(err)


def plot_physics(physics: dict, out: Path) -> list[Path]:
    """Two PNGs: longitudinal profiles with their maxima against theory, and the resolution curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for key, style in (("electron_profile", "-"), ("photon_profile", "--")):
        p = physics[key]
        t = np.array(p["depth_x0"])
        for row in p["rows"]:
            line, = ax.plot(t, row["profile"], style, label=f"{p['particle']} {row['energy_gev']:.0f} GeV")
            ax.axvline(row["theory"], color=line.get_color(), ls=":", lw=0.8)
    ax.set_xlabel("depth t (X0)")
    ax.set_ylabel("share of deposited energy per cell")
    ax.set_title("Monte Carlo profiles; dotted: t_max = ln(E/Ec) + C")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out / "mc_longitudinal_profile.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    r = physics["resolution"]
    e = np.array([row["energy_gev"] for row in r["rows"]])
    fig, ax = plt.subplots(figsize=(5.4, 3.8))
    ax.plot(e, [row["sigma_over_e"] for row in r["rows"]], "o", label="Monte Carlo (core width)")
    grid = np.geomspace(e.min(), e.max(), 100)
    ax.plot(grid, np.sqrt(r["a"] ** 2 / grid + r["b"] ** 2), label=f"{r['a']:.1%}/sqrt(E) (+) {r['b']:.2%}")
    ax.set_xscale("log")
    ax.set_xlabel("incident energy (GeV)")
    ax.set_ylabel("sigma / E")
    ax.legend()
    fig.tight_layout()
    paths.append(out / "mc_resolution.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths
