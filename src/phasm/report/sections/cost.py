"""Cost model (``phasm bench``): original vs model vs gate per call, cost per row against batch size,
and the predicted end-to-end speedup."""

from __future__ import annotations

import math

import numpy as np

from phasm.profile.ranking import amdahl, gustafson
from phasm.report.html import Html, fmt, join, key_values, pct, seconds
from phasm.report.model import CostData
from phasm.report.plots import COLOURS, embed, figure, gallery

PART = "cost"
ID = "cost"
TITLE = "Cost model"


def render(c: CostData) -> Html | None:
    pairs = [("function", c.function), ("machine", c.machine), ("surrogate backend", c.backend or "-"),
             ("original, per call", seconds(c.t_orig_s)), ("surrogate call (model mode), per call", seconds(c.t_model_s)),
             ("trust gate, per call", seconds(c.t_gate_s)), ("fallback rate f", pct(c.fallback_rate)),
             ("rows per call", c.rows_per_call),
             ("effective speed s_eff = t_orig / (t_model + t_gate + f t_orig)", fmt(c.s_eff, 3))]
    if c.p is not None and c.s_eff > 0:
        pairs += [("share p of the run in this function", f"{pct(c.p)} (from {c.p_source})"),
                  ("predicted end-to-end speedup (Amdahl)", fmt(amdahl(c.p, c.s_eff), 3)),
                  ("scaled speedup (Gustafson)", fmt(gustafson(c.p, c.s_eff), 3))]
    else:
        pairs.append(("predicted end-to-end speedup", "add the program's profile folder to this report for its share p"))
    figs = [_per_call(c)] + ([_speedup(c)] if c.s_eff > 0 else [])
    if c.model_curve:
        figs.insert(1, _batches(c))
    return join([key_values(pairs, caption=f"Measured on {c.n_measured} calls"), gallery(figs)])


def _per_call(c: CostData) -> Html:
    fig, ax = figure(4.2, 3.2)
    parts = [("original", c.t_orig_s, "#555555"), ("model", c.t_model_s, COLOURS[0]), ("gate", c.t_gate_s, COLOURS[2]),
             ("fallbacks, f x original", c.fallback_rate * c.t_orig_s, COLOURS[1])]
    ax.bar([p[0] for p in parts], [p[1] * 1e6 for p in parts], color=[p[2] for p in parts])
    ax.set_ylabel("microseconds per call", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    if c.t_orig_s > 0 and c.t_orig_s > 50 * max(c.t_model_s, c.t_gate_s, 1e-12):
        ax.set_yscale("log")
    return embed(fig, alt="Cost per call of the original, the model, the gate and the expected fallbacks",
                 caption="Per call: a surrogate call costs model + gate + f x original")


def _batches(c: CostData) -> Html:
    fig, ax = figure(5.2, 3.4)
    b = sorted(c.model_curve)
    ax.loglog(b, [c.model_curve[k] for k in b], "o-", color=COLOURS[0], lw=1.8, label=f"this model ({c.backend or 'model'})")
    for dev, curves in c.width_curves.items():
        for k, (w, curve) in enumerate(curves.items()):
            bb = sorted(curve)
            ax.loglog(bb, [curve[x] for x in bb], "--", color=COLOURS[(k + 2) % len(COLOURS)], alpha=0.8,
                      label=f"MLP width {w} ({dev})")
    ax.axhline(c.t_orig_s / c.rows_per_call, color="k", lw=1.4, label="original, per row")
    ax.axhline((c.t_model_s + c.t_gate_s) / c.rows_per_call, color=COLOURS[1], lw=1, label="surrogate call + gate, per row")
    ax.set_xlabel("batch size (rows per model call)", fontsize=8)
    ax.set_ylabel("seconds per row", fontsize=8)
    ax.legend(fontsize=6)
    return embed(fig, alt="Seconds per row against batch size for the model and plain MLPs, with the original's cost",
                 caption="The bare model's cost per row falls with the batch size; the lines are the per-call costs above")


def _speedup(c: CostData) -> Html:
    fig, ax = figure(4.6, 3.2)
    p = np.linspace(0, 0.99, 200)
    ax.plot(p, [amdahl(x, c.s_eff) for x in p], color=COLOURS[0], lw=1.8, label=f"Amdahl at s_eff = {fmt(c.s_eff, 3)}")
    ax.plot(p, 1 / (1 - p), color="#777", ls=":", lw=1, label="bound 1/(1-p) (infinitely fast)")
    if math.isfinite(c.s_eff):
        ax.plot(p, [gustafson(x, c.s_eff) for x in p], color=COLOURS[2], ls="--", lw=1, label="Gustafson (1-p)+p s_eff")
    if c.p is not None:
        ax.plot([c.p], [amdahl(c.p, c.s_eff)], "o", color=COLOURS[1], label=f"this program, p = {pct(c.p)}")
    ax.set_yscale("log")
    ax.set_xlabel("share p of the run in the function", fontsize=8)
    ax.set_ylabel("end-to-end speedup", fontsize=8)
    ax.legend(fontsize=6)
    return embed(fig, alt="Predicted end-to-end speedup against the function's share of the run",
                 caption="Predicted end-to-end speedup when the function takes a share p of the run")
