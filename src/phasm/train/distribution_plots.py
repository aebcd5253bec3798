"""PNG plots of a distribution comparison (matplotlib, Agg backend; ``pip install 'phasm[profile]'``).

Example
-------
>>> import numpy as np, tempfile, pathlib
>>> from phasm.train.distributions import compare_distributions
>>> rng = np.random.default_rng(0); X = rng.uniform(1, 2, (300, 1))
>>> real, gen = X + rng.normal(0, .1, (300, 1)), X + rng.normal(0, .1, (300, 1))
>>> rep = compare_distributions(X, real, gen)
>>> [p.name for p in plot_report(rep, X, real, gen, pathlib.Path(tempfile.mkdtemp()))]
['marginals.png']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from phasm.errors import BackendUnavailable
from phasm.train.distributions import DistributionReport, layer_observables


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise BackendUnavailable("plots need matplotlib; install it with: pip install 'phasm[profile]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _hist(ax: Any, a: np.ndarray, b: np.ndarray, title: str) -> None:
    lo, hi = np.percentile(np.r_[a, b], [0.5, 99.5])
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
    ax.hist(a, bins, histtype="step", density=True, label="simulated", lw=1.4)
    ax.hist(b, bins, histtype="step", density=True, label="generated", lw=1.4)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)


def plot_report(report: DistributionReport, X: np.ndarray, Y_real: np.ndarray, Y_gen: np.ndarray, out: Path, *,
                output_shape: Sequence[int] | None = None, radial_centres: Sequence[float] | None = None,
                condition_name: str = "input") -> list[Path]:
    """Write the comparison's plots into ``out``; return their paths.

    Layered outputs: ``layer_energies.png`` (mean per layer and their ratio), ``layer_distributions.png``
    (per-layer and total energy histograms), ``shower_shapes.png`` (mean and spread of the radial
    centroid and width per layer), ``response_resolution.png`` (against the conditioning input).
    Other outputs: ``marginals.png`` (histograms of up to 6 outputs).
    """
    plt = _pyplot()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    Yr = np.asarray(Y_real, np.float64).reshape(len(Y_real), -1)
    Yg = np.asarray(Y_gen, np.float64).reshape(len(Y_gen), -1)
    paths: list[Path] = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        paths.append(out / name)
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)

    if output_shape is None or len(output_shape) < 2:
        k = min(Yr.shape[1], 6)
        fig, axes = plt.subplots(1, k, figsize=(3.2 * k, 2.8), squeeze=False)
        for j in range(k):
            _hist(axes[0, j], Yr[:, j], Yg[:, j], f"output {j}")
        axes[0, 0].legend(fontsize=7)
        fig.suptitle(f"classifier AUC {report.auc:.3f}", fontsize=10)
        save(fig, "marginals.png")
        return paths

    o, g = layer_observables(Yr, output_shape, radial_centres), layer_observables(Yg, output_shape, radial_centres)
    L = o["energy"].shape[1]
    layers = np.arange(L)
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(6.0, 5.0), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot(layers, o["energy"].mean(0), "o-", label="simulated")
    ax.plot(layers, g["energy"].mean(0), "s--", label="generated")
    ax.set_ylabel("mean energy per layer")
    ax.set_title(f"classifier AUC {report.auc:.3f}; largest deviation (layers >= 1%) {report.layers['max_rel_dev']:.1%}",
                 fontsize=9)
    ax.legend()
    ax2.plot(layers, g["energy"].mean(0) / np.where(o["energy"].mean(0) > 0, o["energy"].mean(0), 1), "k.-")
    ax2.axhspan(0.95, 1.05, color="0.9")
    ax2.set_ylabel("gen / sim")
    ax2.set_xlabel("layer")
    save(fig, "layer_energies.png")

    picks = sorted(set(np.linspace(0, L - 1, 5).round().astype(int)))
    fig, axes = plt.subplots(1, len(picks) + 1, figsize=(3.0 * (len(picks) + 1), 2.8))
    for ax, layer in zip(axes, picks):
        _hist(ax, o["energy"][:, layer], g["energy"][:, layer], f"layer {layer} energy")
    _hist(axes[-1], o["total"] / X[:, 0], g["total"] / X[:, 0], f"total / {condition_name}")
    axes[0].legend(fontsize=7)
    save(fig, "layer_distributions.png")

    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4))
    for ax, key, label in ((axes[0], "r_mean", "radial centroid"), (axes[1], "r_width", "radial width")):
        for obs, name, style in ((o, "simulated", "o-"), (g, "generated", "s--")):
            filled = obs["energy"] > 0
            vals = np.where(filled, obs[key], np.nan)
            m, s = np.nanmean(vals, 0), np.nanstd(vals, 0)
            ax.plot(layers, m, style, label=name)
            ax.fill_between(layers, m - s, m + s, alpha=0.2)
        ax.set_xlabel("layer")
        ax.set_ylabel(label + (" (cm)" if radial_centres is not None else " (bins)"))
    axes[0].legend(fontsize=8)
    save(fig, "shower_shapes.png")

    if report.response.get("bins"):
        rows = report.response["bins"]
        c = [0.5 * (r["low"] + r["high"]) for r in rows]
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4))
        axes[0].plot(c, [r["response_real"] for r in rows], "o-", label="simulated")
        axes[0].plot(c, [r["response_gen"] for r in rows], "s--", label="generated")
        axes[0].set_ylabel(f"mean total / {condition_name}")
        axes[1].errorbar(c, [r["resolution_real"] for r in rows], [r["resolution_real_stderr"] for r in rows], fmt="o-",
                         label="simulated")
        axes[1].plot(c, [r["resolution_gen"] for r in rows], "s--", label="generated")
        axes[1].set_ylabel("resolution (core width / median)")
        for ax in axes:
            ax.set_xlabel(condition_name)
            ax.set_xscale("log")
        axes[0].legend(fontsize=8)
        save(fig, "response_resolution.png")
    return paths
