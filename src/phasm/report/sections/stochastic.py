"""Surrogate: a stochastic (generative) surrogate judged on distributions: generated against simulated.

Drawn when the model folder's ``phasm.json`` carries a ``distribution`` record (the slot for
generative backends)::

    "distribution": {
      "auc": 0.61,                      # classifier two-sample AUC, held-out simulated vs generated (0.5: perfect)
      "auc_bound": 0.75,                # optional: the bound the model was accepted against
      "n_simulated": 2000, "n_generated": 2000,          # optional
      "observables": {                  # optional: one histogram per observable (e.g. energy per layer)
        "layer 0 energy": {"edges": [...], "simulated": [...], "generated": [...], "unit": "GeV"}
      },
      "metrics": {"layer_energy_max_rel_dev": 0.03}      # optional: further scalar figures
    }

``edges`` has one entry more than ``simulated`` and ``generated`` (counts or densities per bin).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from phasm.report.html import Html, fmt, join, key_values, note, table
from phasm.report.model import SurrogateData
from phasm.report.plots import COLOURS, embed, figure, gallery

PART = "surrogate"
ID = "stochastic"
TITLE = "Stochastic surrogate: distributions"
MAX_OBSERVABLES = 24


def render(s: SurrogateData) -> Html | None:
    d = s.distribution
    if not d:
        return None
    auc = d.get("auc")
    bound = d.get("auc_bound")
    verdict = "-"
    if isinstance(auc, (int, float)) and isinstance(bound, (int, float)):
        verdict = "within the bound" if auc <= bound else "ABOVE the bound"
    about = key_values([("classifier AUC, simulated vs generated (0.5: indistinguishable)", fmt(auc)),
                        ("bound", fmt(bound)), ("verdict", verdict),
                        ("simulated / generated samples", f"{fmt(d.get('n_simulated'))} / {fmt(d.get('n_generated'))}")],
                       caption="Two-sample test on held-out samples")
    metrics = d.get("metrics") or {}
    extra = table(["figure", "value"], [[k, fmt(v) if isinstance(v, (int, float)) else str(v)]
                                        for k, v in sorted(metrics.items())], row_headers=True) if metrics else None
    figs, bad = [], []
    for name, h in list((d.get("observables") or {}).items())[:MAX_OBSERVABLES]:
        fig_html = _observable(str(name), h)
        if fig_html is None:
            bad.append(str(name))
        else:
            figs.append(fig_html)
    warn = note("observables with malformed histograms, not drawn: " + ", ".join(bad)) if bad else None
    return join([about, extra, gallery(figs), warn])


def _observable(name: str, h: Any) -> Html | None:
    if not isinstance(h, dict):
        return None
    try:
        edges = np.asarray(h["edges"], np.float64)
        sim = np.asarray(h["simulated"], np.float64)
        gen = np.asarray(h["generated"], np.float64)
    except (KeyError, TypeError, ValueError):
        return None
    if edges.ndim != 1 or len(edges) < 2 or sim.shape != (len(edges) - 1,) or gen.shape != sim.shape:
        return None
    fig, ax = figure(3.6, 2.8)
    ax.stairs(sim, edges, color=COLOURS[0], lw=1.6, label="simulated")
    ax.stairs(gen, edges, color=COLOURS[1], lw=1.6, ls="--", label="generated")
    unit = h.get("unit")
    ax.set_xlabel(f"{name} [{unit}]" if unit else name, fontsize=8)
    ax.legend(fontsize=7)
    return embed(fig, alt=f"Distribution of {name}: generated against simulated",
                 caption=f"{name}: generated against simulated")
