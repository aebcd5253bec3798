"""Profile: functions worth replacing, ranked, with Amdahl's and Gustafson's figures."""

from __future__ import annotations

import os

import numpy as np

from phasm.report.html import Html, fmt, join, note, pct, table
from phasm.report.model import ProfileData
from phasm.report.plots import COLOURS, embed, figure, gallery

PART = "profile"
ID = "candidates"
TITLE = "Candidates"
MAX_ROWS = 30
MAX_BARS = 12


def render(p: ProfileData) -> Html | None:
    if not p.candidates:
        return note("no function passed the filters (share at least 2% of the run, not a tower frame)")
    rows = [[k, c["name"], f"{os.path.basename(c['file'])}:{c['line']}", pct(c["p"]), pct(c["p_on"]), pct(c["p_off"]),
             fmt(c["amdahl"], 3), f"{fmt(c['s'], 3)}{' (measured)' if c['s_source'] == 'cost model' else ''}",
             fmt(c["speedup"], 3), fmt(c["gustafson"], 3)] for k, c in enumerate(p.candidates[:MAX_ROWS], 1)]
    t = table(["#", "function", "where", "p (wall)", "p on-CPU", "p off-CPU", "Amdahl bound 1/(1-p)",
               "surrogate speed s", "speedup 1/((1-p)+p/s)", "Gustafson (1-p)+p*s"], rows,
              caption=f"Best first; shares of {'the time within ' + p.root if p.root else 'the run'}")
    return join([t, gallery([_bars(p)])])


def _bars(p: ProfileData) -> Html:
    cands = p.candidates[:MAX_BARS]
    names = [c["name"] for c in cands][::-1]
    on = np.array([c["p_on"] for c in cands][::-1])
    off = np.array([c["p_off"] for c in cands][::-1])
    fig, ax = figure(6.4, 0.32 * len(cands) + 1.0, left=2.5)
    y = np.arange(len(cands))
    ax.barh(y - 0.18, on, height=0.36, color=COLOURS[1], label="share of on-CPU time")
    ax.barh(y + 0.18, off, height=0.36, color=COLOURS[0], label="share of off-CPU time")
    ax.set_yticks(y, [n if len(n) <= 40 else n[:38] + ".." for n in names], fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("inclusive share", fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    return embed(fig, alt="Inclusive on-CPU and off-CPU shares of the top candidates",
                 caption="Where each candidate spends its time: computing (on-CPU) or waiting (off-CPU)")
