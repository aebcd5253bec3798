"""Surrogate: how the model was trained: backend and hyper-parameters, rows, time, loss curves, held-out metrics."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from phasm.report.html import Html, join, key_values, note, pct, seconds, table
from phasm.report.model import SurrogateData
from phasm.report.plots import COLOURS, embed, figure, gallery

PART = "surrogate"
ID = "training"
TITLE = "Training"
SHOWN = {"seed", "val_fraction", "n_train", "n_val", "calibration_rows", "dropped_nonfinite", "seconds", "epochs",
         "best_epoch", "device", "train_loss", "val_loss"}


def _compact(value: Any) -> str:
    if value is None:  # a hyper-parameter left at None is chosen by the backend (device, threads, time limit)
        return "default"
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, (dict, list, tuple)) else str(value)


def render(s: SurrogateData) -> Html | None:
    t = s.training
    if t is None:
        return None
    r = t.record
    about = key_values([
        ("backend", f"{t.backend} {t.backend_version}".strip()),
        ("rows: training / validation / gate calibration",
         f"{r.get('n_train', '-')} / {r.get('n_val', '-')} / {r.get('calibration_rows', '-')}"),
        ("non-finite rows left out", r.get("dropped_nonfinite", "-")),
        ("training time", seconds(r.get("seconds"))),
        ("epochs (best)", f"{r.get('epochs', '-')} ({r.get('best_epoch', '-')})"),
        ("device", r.get("device", "-")), ("seed", r.get("seed", "-")),
        ("validation share", pct(r.get("val_fraction"))),
        ("trained", t.created), ("by phasm", t.phasm_version or "-"),
    ])
    elsewhere = r.get("trained")  # fn.load_exported / load_onnx: only where the model came from is recorded
    caption = (f"Parameters of the {t.backend} backend" if elsewhere is None else
               f"Serving parameters of the {t.backend} backend (the model was trained {elsewhere}: not how it was trained)")
    params = table(["hyper-parameter", "value"], [[k, _compact(v)] for k, v in sorted(t.params.items())],
                   caption=caption, row_headers=True) if t.params else None
    others = [[k, _compact(v)] for k, v in sorted(r.items()) if k not in SHOWN]
    settings = table(["setting", "value"], others, caption="Further entries of the training record",
                     row_headers=True) if others else None
    metrics = None
    if s.metrics:
        rows = [[name, m.get("n"), m.get("rmse"), m.get("max_abs"), pct(m.get("rel_p50")), pct(m.get("rel_p90")),
                 pct(m.get("rel_p99"))] for name, m in s.metrics.items()]
        metrics = table(["output", "rows", "RMSE", "max abs error", "rel. error p50", "p90", "p99"], rows,
                        caption="Validation rows held out from training (computed when the model was trained)")
    return join([about, params, settings, _loss_figure(r), metrics])


def _loss_figure(r: dict[str, Any]) -> Html | None:
    train = np.asarray(r.get("train_loss") or [], np.float64)
    val = np.asarray(r.get("val_loss") or [], np.float64)
    if not len(train) and not len(val):
        return note("no loss curve recorded")
    if max(len(train), len(val)) < 2:
        final = ", ".join(f"{what} loss {curve[-1]:.4g}" for what, curve in (("training", train), ("validation", val))
                          if len(curve))
        return note(f"one closed-form fit, no loss curve{': ' + final if final else ''} (standardised units)")
    fig, ax = figure(5.6, 3.4)
    for curve, label, colour in ((train, "training loss", COLOURS[0]), (val, "validation loss", COLOURS[1])):
        if len(curve):
            ax.plot(np.arange(1, len(curve) + 1), curve, color=colour, label=label, lw=1.6)
    both = np.concatenate([train, val])
    if len(both) and np.all(both[np.isfinite(both)] > 0):
        ax.set_yscale("log")
    best = r.get("best_epoch")
    if isinstance(best, int) and best > 0:
        ax.axvline(best, color="#777", ls="--", lw=1, label=f"best epoch {best}")
    ax.set_xlabel("epoch", fontsize=8)
    ax.set_ylabel("loss (standardised units)", fontsize=8)
    ax.legend(fontsize=7)
    return gallery([embed(fig, alt="Training and validation loss against epoch",
                          caption="Loss per epoch on the training and validation rows")])
