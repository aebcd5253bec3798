"""Surrogate: after training: the live counters (fallbacks, shadow checks) and the rows captured later,
replayed through the model and the gate in capture order."""

from __future__ import annotations

from typing import Any

import numpy as np

from phasm.report.html import Html, join, key_values, note, para, pct, seconds, table
from phasm.report.model import ProductionData, ReplayData, SurrogateData
from phasm.report.plots import COLOURS, embed, figure, gallery

PART = "surrogate"
ID = "production"
TITLE = "Production"
WINDOWS = 20


def render(s: SurrogateData) -> Html | None:
    p = s.production
    if p is None or (p.counters is None and p.replay is None):
        return None
    return join([_counters(p) if p.counters is not None else None, _replay(p) if p.replay is not None else None])


def _counters(p: ProductionData) -> Html:
    c: dict[str, Any] = p.counters or {}
    asked = int(c.get("model_rows", 0)) + int(c.get("fallbacks", 0))
    pairs = [("calls", c.get("calls")), ("rows answered by the model", c.get("model_rows")),
             ("rows sent back to the original (fallbacks)", c.get("fallbacks")),
             ("fallback rate", pct(c.get("fallback_rate")) if asked else "- (no auto-mode call)"),
             ("expected fallback rate (certificate)", pct(p.expected_fallback_rate)),
             ("rows captured", c.get("captured_rows")),
             ("time in the original / in the model", f"{seconds(c.get('time_original_s'))} / {seconds(c.get('time_model_s'))}"),
             ("shadow-checked rows / misses", f"{c.get('shadow_rows', 0)} / {c.get('shadow_misses', 0)}"),
             ("observed miss rate (shadow checks)", pct(c.get("observed_miss_rate"))),
             ("miss-rate bound (certificate)", pct(p.miss_rate_bound))]
    parts: list[Any] = [key_values(pairs, caption="Counters of the live surrogate in this process (fn.stats)")]
    if not c.get("shadow_rows"):
        parts.append(note("no shadow checks: set shadow_fraction= on the surrogate (or run shadow mode) to measure "
                          "the miss rate in production"))
    errors = c.get("shadow_error") or {}
    if errors:
        parts.append(table(["output", "mean relative error", "max relative error", "max abs error"],
                           [[k, pct(v.get("mean_rel")), pct(v.get("max_rel")), v.get("max_abs")] for k, v in errors.items()],
                           caption="The model against the original on shadow-checked rows"))
    return join(parts)


def _replay(p: ProductionData) -> Html:
    r: ReplayData = p.replay  # type: ignore[assignment]
    n = len(r.rows)
    rejected = ~r.accepted
    pairs: list[tuple[str, Any]] = [("rows", f"{n} (rows {int(r.rows[0])} to {int(r.rows[-1])} of the store)" if n else 0),
                                    ("share the gate rejects now", pct(float(rejected.mean())) if n else "-")]
    if r.missed is not None:
        acc = r.accepted
        pairs.append(("miss rate among the rows it accepts", pct(float(r.missed[acc].mean())) if acc.any() else "-"))
        if rejected.any():
            pairs.append(("rejected rows the model had within tolerance",
                          pct(float((~r.missed[rejected]).mean()))))
    pairs.append(("median / max per-call relative error", f"{pct(float(np.median(r.rel_error)))} / "
                                                           f"{pct(float(r.rel_error.max()))}" if n else "-"))
    parts: list[Any] = [
        para("Rows captured after the model was trained (those past the rows it trained, validated and calibrated on), "
             "replayed through the model and its gate: what the gate decides now, and the model's error against the "
             "answer the original gave. In auto mode only the calls the gate sent back are captured, so nearly all "
             "of them are rejected here by construction; rows from shadow or capture mode show the fallback rate and "
             "the miss rate auto mode would have had."),
        key_values(pairs, caption="Replay of the later captures")]
    if n >= 2 * WINDOWS:
        parts.append(gallery([_over_time(r, p)]))
    else:
        parts.append(note(f"{n} later rows: too few to draw over time ({2 * WINDOWS} needed)"))
    return join(parts)


def _over_time(r: ReplayData, p: ProductionData) -> Html:
    edges = np.linspace(0, len(r.rows), WINDOWS + 1).astype(int)
    mid = [float(r.rows[(a + b - 1) // 2]) for a, b in zip(edges, edges[1:])]
    fallback = [float((~r.accepted[a:b]).mean()) for a, b in zip(edges, edges[1:])]
    fig, ax = figure(5.6, 3.4)
    ax.plot(mid, fallback, "o-", color=COLOURS[0], lw=1.4, ms=3, label="share the gate rejects")
    if p.expected_fallback_rate is not None:
        ax.axhline(p.expected_fallback_rate, color=COLOURS[0], ls=":", lw=1, label="expected fallback rate")
    if r.missed is not None:
        miss = []
        for a, b in zip(edges, edges[1:]):
            acc = r.accepted[a:b]
            miss.append(float(r.missed[a:b][acc].mean()) if acc.any() else np.nan)
        ax.plot(mid, miss, "s-", color=COLOURS[1], lw=1.4, ms=3, label="miss rate among accepted")
        if p.max_miss_rate is not None:
            ax.axhline(p.max_miss_rate, color="k", ls="--", lw=1, label=f"allowed {pct(p.max_miss_rate)}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("row of the store (capture order)", fontsize=8)
    ax.set_ylabel("share of rows", fontsize=8)
    ax.legend(fontsize=6)
    return embed(fig, alt="Fallback share and miss rate among accepted rows over the later captures",
                 caption=f"Over {WINDOWS} windows of the later captures, in the order they were captured")
