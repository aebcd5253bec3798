"""Surrogate: the trust gate: its certificate, the tolerance, and the miss rate among accepted calls
against the threshold on the evaluated rows."""

from __future__ import annotations

from typing import Any

import numpy as np

from phasm.report.html import Html, fmt, join, key_values, note, para, pct, table
from phasm.report.model import GateCurve, SurrogateData
from phasm.report.plots import COLOURS, embed, figure, gallery, log_scale_fits

PART = "surrogate"
ID = "gate"
TITLE = "Trust gate"


def render(s: SurrogateData) -> Html | None:
    g = s.gate
    if g is None:
        return None
    parts: list[Any] = [para(f"Gate: {g.kind}. {g.description}")]
    r = g.report
    if r is None:
        parts.append(note("No certified gate: the model was trained without a tolerance, so no accuracy bound holds "
                          "for the calls it answers. Train with tolerance=phasm.Tolerance(...) to certify one."))
    else:
        parts.append(_certificate(r))
        groups = r.get("groups") or []
        if len(groups) > 1:
            parts.append(_groups(groups))
    if g.tolerance:
        tol = g.tolerance
        per = "; ".join(f"{k}: rel {fmt(v[0])}, abs {fmt(v[1])}" for k, v in (tol.get("per_output") or {}).items())
        parts.append(key_values([("relative error per call", pct(tol.get("rel")) if tol.get("rel") is not None else "-"),
                                 ("absolute error per call", fmt(tol.get("abs"))),
                                 ("allowed share of accepted calls beyond it", pct(tol.get("max_miss_rate"))),
                                 ("per output", per or "-")], caption="Tolerance"))
    if g.operating:
        op = g.operating
        pairs = [("rows", op["n_rows"]), ("accepted by the gate", op["accepted"]), ("fallback rate", pct(op["fallback_rate"]))]
        if "miss_rate" in op:
            pairs += [("misses among accepted", op["misses"]), ("miss rate among accepted", pct(op["miss_rate"])),
                      (f"upper bound at {pct(op['confidence'])} confidence", pct(op["miss_upper"]))]
        parts += [para(f"On {g.rows_label}:"), key_values(pairs, caption="The gate as auto mode applies it")]
    if g.curve is not None and len(g.curve.thresholds):
        parts.append(gallery(_curve_figures(g.curve, r, g.operating)))
    return join(parts)


def _certificate(r: dict[str, Any]) -> Html:
    certified = bool(r.get("certified"))
    verdict = (f"certified: with {pct(r.get('confidence'))} confidence, at most {pct(r.get('miss_rate_bound'))} of the "
               f"calls it accepts are beyond the tolerance (allowed: {pct(r.get('max_miss_rate'))})" if certified else
               f"NOT certified: everything falls back (at least {r.get('min_rows_needed')} accepted certifying rows "
               "are needed)")
    pairs = [("certificate", verdict), ("miss-rate bound among accepted calls", pct(r.get("miss_rate_bound"))),
             ("allowed miss rate", pct(r.get("max_miss_rate"))), ("confidence", pct(r.get("confidence"))),
             ("calibration rows (held out)", r.get("n_calibration")), ("certifying rows", r.get("n_certify")),
             ("accepted certifying rows / misses", f"{r.get('accepted')} / {r.get('accepted_misses')}"),
             ("expected fallback rate", pct(r.get("expected_fallback_rate"))),
             ("rejected by the domain check", pct(r.get("domain_rejected_rate"))),
             ("score / threshold", f"{r.get('score')} <= {fmt(_num(r.get('threshold')))}")]
    if r.get("regions") and r.get("regions") != "none":
        pairs.append(("regions", r["regions"]))
    pairs.append(("method", r.get("method", "-")))
    return key_values(pairs, caption="Certificate (computed on held-out calibration rows when the model was trained)")


def _groups(groups: list[dict[str, Any]]) -> Html:
    rows = [[g.get("label"), g.get("n_certify"), pct(g.get("share")), fmt(bool(g.get("certified"))),
             fmt(_num(g.get("threshold"))), f"{g.get('accepted')} / {g.get('accepted_misses')}",
             pct(g.get("miss_rate_bound")), pct(g.get("expected_fallback_rate"))] for g in groups]
    return table(["region", "certifying rows", "share of training rows", "certified", "threshold",
                  "accepted / misses", "miss-rate bound", "expected fallback"], rows,
                 caption="Per region: each certified on its own rows")


def _num(x: Any) -> float | None:
    if isinstance(x, str):
        return float(x) if x in ("inf", "-inf") else None
    return float(x) if isinstance(x, (int, float)) else None


def _curve_figures(c: GateCurve, r: dict[str, Any] | None, op: dict[str, Any] | None) -> list[Html]:
    alpha = r.get("max_miss_rate") if r else None
    fig, ax = figure(5.4, 3.4, right=0.65)
    t = np.maximum(c.thresholds, 1e-12) if log_scale_fits(c.thresholds) else c.thresholds
    ax.plot(t, c.miss_rate, color=COLOURS[1], lw=1.6, label="miss rate among accepted")
    ax.plot(t, c.miss_upper, color=COLOURS[1], lw=1, ls=":", label="its upper bound")
    if alpha is not None:
        ax.axhline(alpha, color="k", ls="--", lw=1, label=f"allowed {pct(alpha)}")
    thr = _num(r.get("threshold")) if r else None
    if thr is not None and np.isfinite(thr):
        ax.axvline(thr, color="#777", lw=1, label="certified threshold")
    if log_scale_fits(c.thresholds):
        ax.set_xscale("log")
    ax.set_xlabel("threshold on the gate's score", fontsize=8)
    ax.set_ylabel("miss rate among accepted", fontsize=8)
    twin = ax.twinx()
    twin.plot(t, c.fallback_rate, color=COLOURS[0], lw=1.4, label="fallback rate")
    twin.set_ylabel("fallback rate", fontsize=8, color=COLOURS[0])
    twin.tick_params(labelsize=8)
    twin.set_ylim(0, 1)
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=6, loc="upper left")
    first = embed(fig, alt="Miss rate among accepted calls and fallback rate against the gate's threshold",
                  caption="One threshold swept over the evaluated rows: the higher it is, the more calls the model "
                          "answers and the more of them miss")
    fig2, ax2 = figure(4.0, 3.4)
    ax2.plot(c.fallback_rate, c.miss_rate, color=COLOURS[1], lw=1.6, label="one threshold")
    if alpha is not None:
        ax2.axhline(alpha, color="k", ls="--", lw=1, label=f"allowed {pct(alpha)}")
    if op and "miss_rate" in op:
        ax2.plot([op["fallback_rate"]], [op["miss_rate"]], "o", color=COLOURS[2], label="the gate in auto mode")
    ax2.set_xlabel("fallback rate", fontsize=8)
    ax2.set_ylabel("miss rate among accepted", fontsize=8)
    ax2.legend(fontsize=6)
    second = embed(fig2, alt="Miss rate among accepted calls against the fallback rate",
                   caption="The trade-off: calls sent back to the original against misses among the rest")
    return [first, second]
