"""Validation of a generative surrogate on distributions: is what it draws like what the function draws?

A stochastic function has no single right answer, so a generator is judged the way the
CaloChallenge judges shower models: on held-out inputs ``X``, the simulated outputs ``Y_real`` and
one generated sample per row ``Y_gen`` are compared as distributions.

- **Classifier two-sample test** (:func:`classifier_auc`): a gradient-boosted classifier
  (scikit-learn) learns to tell ``(x, y_real)`` from ``(x, y_gen)`` on part of the rows and is
  scored on the rest (k-fold, out-of-fold predictions); its ROC AUC is 0.5 when it cannot tell them
  apart and 1.0 when it always can.  The rows carry the inputs, so a wrong *conditional*
  distribution shows even if the pooled outputs look right.  The features are the inputs, the raw
  outputs, for layered outputs the observables below, and the outputs (layered: the total and
  layer energies) as residuals from their mean given the inputs in units of their spread given the
  inputs (:func:`residual_features`), so a tree sees a wrong conditional spread.
- **Observables** per output (scalars, or per layer of a layered output): the two-sample
  Kolmogorov-Smirnov distance, means and widths and their relative deviations.
- **Layered outputs** (an output array whose first axis is a layer, like a calorimeter's
  ``(layers, radial, angular)`` voxels): per-layer energies, the total, and per layer the shower
  shape: energy-weighted mean and width of the radial bin index (or of ``radial_centres``) and, for
  ``(layers, radial, angular)`` arrays, the transverse centroid ``x, y``.
- **Response and resolution** against a conditioning input (the one scalar input, or
  ``condition=``): in quantile bins of it, the mean of the total output divided by the input, and
  its resolution: the relative width of the core, interquartile range / 1.349 over the median
  (as a calorimeter's resolution is quoted from a fit to the core of the peak; the full relative
  standard deviation, tails included, is reported beside it), simulated and generated (layered outputs, or any output summed when ``condition=`` is
  given).

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.uniform(1, 2, (1000, 1))
>>> real, good, bad = (X + s * rng.standard_normal((1000, 1)) for s in (0.1, 0.1, 0.3))
>>> compare_distributions(X, real, good, seed=0).auc < 0.6, compare_distributions(X, real, bad, seed=0).auc > 0.7
(True, True)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from phasm.backends.generative import polynomial_degree, polynomial_features
from phasm.errors import BackendUnavailable

LAYER_SHARE_MIN = 0.01  # layers holding less of the mean total are left out of the per-layer maximum


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov distance: the largest gap between the two empirical CDFs.

    >>> ks_statistic(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    0.0
    """
    a, b = np.sort(np.asarray(a, np.float64).ravel()), np.sort(np.asarray(b, np.float64).ravel())
    if not len(a) or not len(b):
        return float("nan")
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Asymptotic p-value of a two-sample KS distance ``d`` between samples of ``n`` and ``m`` values."""
    if not (n and m) or not math.isfinite(d):
        return float("nan")
    ne = math.sqrt(n * m / (n + m))
    lam = (ne + 0.12 + 0.11 / ne) * d
    if lam < 1e-3:
        return 1.0
    s = sum(2 * (-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return float(min(max(s, 0.0), 1.0))


def auc_stderr(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an ROC AUC (Hanley and McNeil, 1982)."""
    if not (n_pos and n_neg):
        return float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    return float(math.sqrt(max(var, 0.0)))


def classifier_auc(real: np.ndarray, generated: np.ndarray, *, folds: int = 2, seed: int = 0,
                   max_iter: int = 200) -> tuple[float, float]:
    """Out-of-fold ROC AUC of a gradient-boosted classifier separating two samples, and its standard error.

    ``real`` and ``generated`` are feature matrices ``(n, k)`` and ``(m, k)``.
    """
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import StratifiedKFold
    except ImportError:
        raise BackendUnavailable("the classifier two-sample test needs scikit-learn; install it with: "
                                 "pip install 'phasm[sklearn]'") from None
    A, B = np.asarray(real, np.float64), np.asarray(generated, np.float64)
    F = np.nan_to_num(np.concatenate([A, B]), nan=0.0, posinf=1e300, neginf=-1e300)
    label = np.r_[np.zeros(len(A)), np.ones(len(B))]
    if min(len(A), len(B)) < max(2, folds):
        raise ValueError(f"classifier_auc: need at least {max(2, folds)} rows of each sample, got {len(A)} and {len(B)}")
    score = np.zeros(len(F))
    for train, test in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(F, label):
        clf = HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=0.1, early_stopping=True,
                                             validation_fraction=0.2, n_iter_no_change=20, random_state=seed)
        clf.fit(F[train], label[train])
        score[test] = clf.predict_proba(F[test])[:, 1]
    auc = float(roc_auc_score(label, score))
    return auc, auc_stderr(auc, len(B), len(A))


def layer_observables(Y: np.ndarray, shape: Sequence[int], radial_centres: Sequence[float] | None = None
                      ) -> dict[str, np.ndarray]:
    """Per-row observables of a layered output ``Y (n, prod(shape))`` with ``shape = (layers, ...)``.

    ``energy (n, L)``, ``total (n,)``, ``r_mean (n, L)`` and ``r_width (n, L)`` (energy-weighted mean
    and width of the second axis' bin centre: ``radial_centres`` or the bin index + 0.5) and, for
    3-D shapes ``(L, radial, angular)``, ``x (n, L)`` and ``y (n, L)`` (the transverse centroid with
    angular bins as sectors).  Empty layers get 0.
    """
    n = len(Y)
    shape = tuple(int(s) for s in shape)
    G = np.asarray(Y, np.float64).reshape(n, shape[0], shape[1], -1)
    energy = G.sum(axis=(2, 3))
    radial = G.sum(axis=3)
    r = np.asarray(radial_centres, np.float64) if radial_centres is not None else np.arange(shape[1]) + 0.5
    if r.shape != (shape[1],):
        raise ValueError(f"radial_centres: expected {shape[1]} values, got {r.shape}")
    safe = np.where(energy > 0, energy, 1.0)
    r_mean = (radial * r).sum(2) / safe
    r_width = np.sqrt(np.maximum((radial * r * r).sum(2) / safe - r_mean**2, 0.0))
    out = {"energy": energy, "total": energy.sum(1), "r_mean": r_mean, "r_width": r_width}
    if len(shape) == 3:
        phi = (np.arange(shape[2]) + 0.5) / shape[2] * 2 * np.pi - np.pi
        px, py = r[:, None] * np.cos(phi)[None, :], r[:, None] * np.sin(phi)[None, :]
        out["x"] = (G * px).sum(axis=(2, 3)) / safe
        out["y"] = (G * py).sum(axis=(2, 3)) / safe
    return out


@dataclass
class DistributionReport:
    """What :func:`compare_distributions` found; ``to_json`` is stored in the model folder."""

    auc: float
    auc_stderr: float
    n_rows: int
    observables: dict[str, dict[str, Any]] = field(default_factory=dict)
    layers: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def max_ks(self) -> float:
        return max((o["ks"] for o in self.observables.values()), default=0.0)

    @property
    def max_mean_rel_dev(self) -> float:
        """Largest relative deviation of an observable's mean (per-layer energies: the layers holding >= 1%)."""
        values = [o["mean_rel_dev"] for o in self.observables.values() if o.get("counted", True)]
        return max(values, default=0.0)

    @property
    def layer_energy_max_rel_dev(self) -> float | None:
        return self.layers.get("max_rel_dev")

    @property
    def resolution_rel_dev(self) -> float | None:
        return self.response.get("resolution_max_rel_dev")

    def to_json(self) -> dict[str, Any]:
        """The record, with the keys ``phasm report`` draws (``n_simulated``, ``n_generated``, ``metrics``,
        and per observable the histogram ``edges``/``simulated``/``generated``)."""
        d = asdict(self)
        d.update(max_ks=self.max_ks, max_mean_rel_dev=self.max_mean_rel_dev, n_simulated=self.n_rows,
                 n_generated=self.n_rows)
        metrics = {"max_ks": self.max_ks, "max_mean_rel_dev": self.max_mean_rel_dev,
                   "layer_energy_max_rel_dev": self.layer_energy_max_rel_dev,
                   "resolution_rel_dev": self.resolution_rel_dev,
                   "response_rel_dev": self.response.get("response_max_rel_dev")}
        d["metrics"] = {k: v for k, v in metrics.items() if v is not None}
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "DistributionReport":
        return cls(float(d["auc"]), float(d["auc_stderr"]), int(d["n_rows"]), dict(d.get("observables", {})),
                   dict(d.get("layers", {})), dict(d.get("response", {})))

    def summary(self) -> str:
        lines = [f"classifier AUC {self.auc:.3f} +- {self.auc_stderr:.3f} on {self.n_rows} held-out rows "
                 f"(0.5: indistinguishable), largest KS distance {self.max_ks:.3f}"]
        if self.layers:
            lines.append(f"mean energy per layer: largest relative deviation {self.layers['max_rel_dev']:.2%} "
                         f"(layers holding >= {LAYER_SHARE_MIN:.0%} of the energy)")
        if self.response:
            r = self.response
            lines.append(f"response vs {r['condition']}: largest relative deviation of the mean "
                         f"{r['response_max_rel_dev']:.2%}, of the resolution {r['resolution_max_rel_dev']:.2%}"
                         + (f" (+- {r['resolution_max_rel_dev_stderr']:.1%} from the samples' sizes)"
                            if "resolution_max_rel_dev_stderr" in r else ""))
        return "\n".join(lines)


def residual_features(X: np.ndarray, A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both samples' values as residuals from their common conditional mean, in units of the conditional spread.

    ``m(x)`` and ``s(x)^2`` are least-squares polynomials fitted to the two samples pooled (neither
    is favoured).  A tree classifier splits one feature at a time: given ``(x, y)`` it hardly sees a
    spread that depends on ``x``; given ``(y - m(x)) / s(x)`` it does.
    """
    F = polynomial_features(np.concatenate([X, X]), polynomial_degree(X.shape[1]))
    C = np.concatenate([A, B]).astype(np.float64)
    gram = F.T @ F + 1e-8 * len(F) * np.eye(F.shape[1])
    R = C - F @ np.linalg.solve(gram, F.T @ C)
    var = F @ np.linalg.solve(gram, F.T @ R**2)
    Z = R / np.sqrt(np.maximum(var, 1e-4 * (R**2).mean(0) + 1e-300))
    return Z[:len(A)], Z[len(A):]


def robust_width(a: np.ndarray) -> float:
    """Interquartile range / 1.349: the standard deviation of a Gaussian with the same core."""
    q75, q25 = np.percentile(a, [75, 25])
    return float(q75 - q25) / 1.349


HISTOGRAM_BINS = 30


def _describe(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    ma, mb, sa, sb = float(a.mean()), float(b.mean()), float(a.std()), float(b.std())
    d = ks_statistic(a, b)
    lo, hi = np.percentile(np.r_[a, b], [0.5, 99.5])
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, HISTOGRAM_BINS + 1)
    return {"ks": d, "ks_p": ks_pvalue(d, len(a), len(b)), "mean_real": ma, "mean_gen": mb, "std_real": sa,
            "std_gen": sb, "mean_rel_dev": abs(mb - ma) / abs(ma) if ma else abs(mb - ma),
            "std_rel_dev": abs(sb - sa) / sa if sa else abs(sb - sa),
            # the central 99% of both samples, for plots (phasm report)
            "edges": edges.tolist(), "simulated": np.histogram(a, edges)[0].tolist(),
            "generated": np.histogram(b, edges)[0].tolist()}


def _in_bins(cond: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(edges, cond, side="right") - 1, 0, len(edges) - 2)


def _response(cond: np.ndarray, tot_real: np.ndarray, cond_gen: np.ndarray, tot_gen: np.ndarray, bins: int
              ) -> dict[str, Any]:
    """Mean response and resolution (IQR / 1.349 over the median) of the totals over the condition, in
    quantile bins of the simulated rows' condition; the generated rows may be several draws per input."""
    edges = np.unique(np.quantile(cond, np.linspace(0, 1, bins + 1)))
    which, which_gen = _in_bins(cond, edges), _in_bins(cond_gen, edges)
    rows = []
    for k in range(len(edges) - 1):
        m, mg = which == k, which_gen == k
        if m.sum() < 10 or mg.sum() < 10:
            continue
        c, cg = np.where(cond[m] != 0, cond[m], 1.0), np.where(cond_gen[mg] != 0, cond_gen[mg], 1.0)
        rr, rg = tot_real[m] / c, tot_gen[mg] / cg
        res_r, res_g = robust_width(rr) / abs(np.median(rr)), robust_width(rg) / abs(np.median(rg))
        # the IQR's standard error, about 1.36 sigma / sqrt(2 n) for a Gaussian core
        err_r, err_g = 1.36 * res_r / math.sqrt(2 * m.sum()), 1.36 * res_g / math.sqrt(2 * mg.sum())
        rows.append({"low": float(edges[k]), "high": float(edges[k + 1]), "n": int(m.sum()), "n_gen": int(mg.sum()),
                     "response_real": float(rr.mean()), "response_gen": float(rg.mean()),
                     "resolution_real": float(res_r), "resolution_gen": float(res_g),
                     "std_real": float(rr.std() / abs(rr.mean())), "std_gen": float(rg.std() / abs(rg.mean())),
                     "resolution_real_stderr": float(err_r),
                     "response_rel_dev": float(abs(rg.mean() - rr.mean()) / abs(rr.mean())),
                     "resolution_rel_dev": float(abs(res_g - res_r) / res_r) if res_r else float("inf"),
                     # what the two samples' sizes alone would let the deviation be (one standard error)
                     "resolution_rel_dev_stderr": float(res_g / res_r * math.hypot(err_r / res_r, err_g / res_g))
                     if res_r else float("inf")})
    worst = max(rows, key=lambda r: r["resolution_rel_dev"], default=None)
    return {"bins": rows,
            "response_max_rel_dev": max((r["response_rel_dev"] for r in rows), default=float("nan")),
            "resolution_max_rel_dev": worst["resolution_rel_dev"] if worst else float("nan"),
            "resolution_max_rel_dev_stderr": worst["resolution_rel_dev_stderr"] if worst else float("nan"),
            "generated_per_row": float(len(cond_gen) / max(len(cond), 1))}


def compare_distributions(X: np.ndarray, Y_real: np.ndarray, Y_gen: np.ndarray, *,
                          output_shape: Sequence[int] | None = None, condition: int | None = None,
                          radial_centres: Sequence[float] | None = None, bins: int = 4, folds: int = 2,
                          seed: int = 0, names: Sequence[str] | None = None,
                          response_generated: tuple[np.ndarray, np.ndarray] | None = None) -> DistributionReport:
    """Compare simulated and generated outputs at the same inputs (see the module doc).

    ``X (n, n_in)``, ``Y_real`` and ``Y_gen`` ``(n, n_out)``.  ``output_shape``: the shape of a
    layered output (``(layers, ...)``, product ``n_out``); ``condition``: the input column the
    response is measured against (default: the only one, if there is one); ``names``: output
    column names for the scalar observables; ``response_generated``: more generated rows ``(X_k,
    Y_k)`` (several draws per input) for the response and resolution, whose generated side then
    carries less sampling noise than one draw per row would.
    """
    X = np.asarray(X, np.float64).reshape(len(X), -1)
    Yr = np.asarray(Y_real, np.float64).reshape(len(Y_real), -1)
    Yg = np.asarray(Y_gen, np.float64).reshape(len(Y_gen), -1)
    if not (len(X) == len(Yr) == len(Yg)) or Yr.shape != Yg.shape:
        raise ValueError(f"compare_distributions: X {X.shape}, Y_real {Yr.shape} and Y_gen {Yg.shape} must have "
                         f"the same rows (and the outputs the same width)")
    observables: dict[str, dict[str, float]] = {}
    layers: dict[str, Any] = {}
    feats_r, feats_g = [X, Yr], [X, Yg]
    totals = None
    if output_shape is not None and len(output_shape) >= 2:
        if int(np.prod(output_shape)) != Yr.shape[1]:
            raise ValueError(f"compare_distributions: output_shape {tuple(output_shape)} does not hold {Yr.shape[1]} values")
        obs_r = layer_observables(Yr, output_shape, radial_centres)
        obs_g = layer_observables(Yg, output_shape, radial_centres)
        share = obs_r["energy"].mean(0) / max(obs_r["total"].mean(), 1e-300)
        for key in obs_r:
            a, b = obs_r[key], obs_g[key]
            feats_r.append(a.reshape(len(a), -1))
            feats_g.append(b.reshape(len(b), -1))
            if a.ndim == 1:
                observables[key] = _describe(a, b)
                continue
            for layer in range(a.shape[1]):
                filled = (obs_r["energy"][:, layer] > 0) if key != "energy" else np.ones(len(a), bool)
                filled_g = (obs_g["energy"][:, layer] > 0) if key != "energy" else np.ones(len(b), bool)
                if filled.sum() < 2 or filled_g.sum() < 2:
                    continue
                o = _describe(a[filled, layer], b[filled_g, layer])
                o["counted"] = bool(share[layer] >= LAYER_SHARE_MIN) if key in ("energy", "r_mean", "r_width") else False
                observables[f"{key}[{layer}]"] = o
        mr, mg = obs_r["energy"].mean(0), obs_g["energy"].mean(0)
        rel = np.abs(mg - mr) / np.where(mr > 0, mr, 1.0)
        counted = share >= LAYER_SHARE_MIN
        layers = {"mean_real": mr.tolist(), "mean_gen": mg.tolist(), "rel_dev": rel.tolist(), "share": share.tolist(),
                  "max_rel_dev": float(rel[counted].max()) if counted.any() else float("nan")}
        totals = (obs_r["total"], obs_g["total"])
        zr, zg = residual_features(X, np.c_[obs_r["total"], obs_r["energy"]], np.c_[obs_g["total"], obs_g["energy"]])
    else:
        for j in range(Yr.shape[1]):
            name = names[j] if names is not None and j < len(names) else f"y[{j}]"
            observables[name] = _describe(Yr[:, j], Yg[:, j])
        totals = (Yr.sum(1), Yg.sum(1))
        zr, zg = residual_features(X, Yr, Yg)
    feats_r.append(zr)
    feats_g.append(zg)
    response: dict[str, Any] = {}
    if condition is None and X.shape[1] == 1 and layers:
        condition = 0
    if condition is not None and totals is not None:
        cond_gen, tot_gen = X[:, condition], totals[1]
        if response_generated is not None:
            Xk = np.asarray(response_generated[0], np.float64).reshape(len(response_generated[0]), -1)
            Yk = np.asarray(response_generated[1], np.float64).reshape(len(Xk), -1)
            cond_gen, tot_gen = Xk[:, condition], Yk.sum(1)
        response = _response(X[:, condition], totals[0], cond_gen, tot_gen, bins)
        response["condition"] = int(condition)
    auc, err = classifier_auc(np.concatenate(feats_r, axis=1), np.concatenate(feats_g, axis=1), folds=folds, seed=seed)
    return DistributionReport(auc, err, len(X), observables, layers, response)
