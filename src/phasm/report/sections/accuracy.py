"""Surrogate: the model against the captured answers: parity plots, error histograms, error against each input."""

from __future__ import annotations

import numpy as np

from phasm.report.html import Html, join, note, para, pct, table
from phasm.report.model import AccuracyData, OutputAccuracy, SurrogateData
from phasm.report.plots import COLOURS, embed, figure, gallery, histogram, log_scale_fits

PART = "surrogate"
ID = "accuracy"
TITLE = "Accuracy"
MAX_OUTPUTS = 8
MAX_INPUTS = 12
MAX_POINTS = 4000


def _quantiles(e: np.ndarray) -> list[str]:
    e = e[np.isfinite(e)]
    if not len(e):
        return ["-"] * 5
    return [pct(float(np.quantile(e, q))) for q in (0.5, 0.9, 0.99)] + [pct(float(e.max())), pct(float(e.mean()))]


def render(s: SurrogateData) -> Html | None:
    a = s.accuracy
    if a is None:
        return None
    after = a.after_training
    rows = []
    for o in a.outputs:
        rows.append([o.name, "all evaluated", len(o.rel_error), *_quantiles(o.rel_error)])
        if after.any():
            rows.append([o.name, "captured after training", int(after.sum()), *_quantiles(o.rel_error[after])])
    summary = table(["output", "rows", "count", "p50", "p90", "p99", "max", "mean"], rows,
                    caption="Per-call relative L2 error ||predicted - true|| / ||true||")
    figs = []
    for o in a.outputs[:MAX_OUTPUTS]:
        figs += [_parity(o), _error_histogram(o, after)]
    more = note(f"plots of the first {MAX_OUTPUTS} of {len(a.outputs)} outputs") if len(a.outputs) > MAX_OUTPUTS else None
    inputs = [_error_vs_input(a, i) for i in range(min(len(a.inputs), MAX_INPUTS))]
    const = note("constant over these rows, not plotted: " + ", ".join(a.constant_inputs)) if a.constant_inputs else None
    return join([para(f"Evaluated on {a.rows_label}."), summary, gallery(figs), more,
                 Html("<h4>Error against each input</h4>") if inputs else None, gallery(inputs), const])


def _parity(o: OutputAccuracy) -> Html:
    fig, ax = figure(3.6, 3.3)
    ok = np.isfinite(o.true) & np.isfinite(o.pred)
    t, p = o.true[ok], o.pred[ok]
    ax.scatter(t, p, s=5, alpha=0.35, color=COLOURS[0], edgecolors="none")
    if len(t):
        lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
        if log_scale_fits(t):  # true values over decades: log axes (symmetric-log where predictions are not > 0)
            lo = float(t.min())
            ax.set_xscale("log")
            ax.set_yscale("log") if (p > 0).all() else ax.set_yscale("symlog", linthresh=lo)
        ax.plot([lo, hi], [lo, hi], color="k", lw=1, label="predicted = true")
        ax.legend(fontsize=7, loc="upper left")
    ax.set_xlabel(f"true {o.name}", fontsize=8)
    ax.set_ylabel(f"predicted {o.name}", fontsize=8)
    what = f"{len(t)} values ({'elements of ' if o.size > 1 else ''}sampled calls)"
    return embed(fig, alt=f"Parity plot of {o.name}: predicted against true values",
                 caption=f"{o.name}: predicted against true, {what}")


def _error_histogram(o: OutputAccuracy, after: np.ndarray) -> Html:
    fig, ax = figure(3.6, 3.3)
    e = o.rel_error
    positive = e[np.isfinite(e) & (e > 0)]
    floor = float(positive.min()) if len(positive) else 1e-12
    shown = np.maximum(e, floor)
    histogram(ax, shown[~after] if after.any() else shown, log=True, label="training-time rows" if after.any() else None)
    if after.any():
        histogram(ax, shown[after], log=True, colour=COLOURS[1], label="captured after training")
    if o.tolerance_rel is not None:
        ax.axvline(o.tolerance_rel, color="k", ls="--", lw=1, label=f"tolerance {pct(o.tolerance_rel)}")
    ax.set_xlabel("per-call relative error", fontsize=8)
    ax.set_ylabel("calls", fontsize=8)
    if after.any() or o.tolerance_rel is not None:
        ax.legend(fontsize=7)
    return embed(fig, alt=f"Histogram of the per-call relative error of {o.name}",
                 caption=f"{o.name}: per-call relative error over {len(e)} calls (log bins)")


def _error_vs_input(a: AccuracyData, i: int) -> Html:
    col = a.inputs[i]
    x = np.asarray(col.per_row, np.float64)
    fig, ax = figure(3.6, 3.0)
    series = a.outputs if len(a.outputs) <= 4 else []
    if not series:  # many outputs: the worst of them per call
        worst = np.max(np.vstack([o.rel_error for o in a.outputs]), axis=0)
        series_data = [("worst output", worst)]
    else:
        series_data = [(o.name, o.rel_error) for o in series]
    pick = np.random.default_rng(i).permutation(len(x))[:MAX_POINTS]
    for k, (name, e) in enumerate(series_data):
        y = np.maximum(e, 1e-12)
        colour = COLOURS[k % len(COLOURS)]
        ax.scatter(x[pick], y[pick], s=5, alpha=0.4, color=colour, edgecolors="none", label=name)
    if a.after_training.any():
        sel = pick[a.after_training[pick]]
        ax.scatter(x[sel], np.maximum(series_data[0][1][sel], 1e-12), s=12, facecolors="none", edgecolors=COLOURS[1],
                   label="captured after training")
    ax.set_yscale("log")
    if log_scale_fits(x):
        ax.set_xscale("log")
    ax.set_xlabel(col.per_row_label, fontsize=8)
    ax.set_ylabel("per-call relative error", fontsize=8)
    ax.legend(fontsize=6)
    return embed(fig, alt=f"Per-call relative error against the input {col.name}",
                 caption=f"Error against {col.per_row_label}")
