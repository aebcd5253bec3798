"""Figures with matplotlib's object API and the Agg canvas, embedded as PNG data URIs.

No pyplot: the report never touches matplotlib's global state (a notebook's backend stays as it
is). Every figure carries alt text and a caption.

Example
-------
>>> fig, ax = figure()                       # doctest: +SKIP
>>> ax.plot([1, 2], [3, 4]); embed(fig, alt="a line", caption="A line.")[:8]   # doctest: +SKIP
'<figure>'
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from phasm.errors import ReportError
from phasm.report.html import Html, esc

DPI = 100
COLOURS = ("#1f5fa8", "#d1552b", "#2e8b57", "#8a4fb0", "#b8860b", "#444444")


def figure(width: float = 4.6, height: float = 3.2, *, left: float = 0.62, right: float = 0.15, bottom: float = 0.5,
           top: float = 0.3) -> tuple[Any, Any]:
    """A new figure and its axes; margins in inches (fixed margins: one draw per figure, no layout pass)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ReportError("phasm report draws its figures with matplotlib: pip install 'phasm[report]'") from None
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height)
    ax = fig.add_subplot()
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.3)
    return fig, ax


def embed(fig: Any, *, alt: str, caption: str) -> Html:
    """The figure as an ``<img>`` PNG data URI with alt text and a caption."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    w, h = (int(round(x)) for x in fig.get_size_inches() * DPI)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return Html(f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}" width="{w}" height="{h}">'
                f"<figcaption>{esc(caption)}</figcaption></figure>")


def gallery(figures: list[Html]) -> Html:
    """Figures side by side, wrapping."""
    return Html('<div class="figures">' + "".join(figures) + "</div>") if figures else Html("")


def positive_span(values: np.ndarray) -> float:
    """max / min of the positive finite values (0 when there are none): decades a quantity spans."""
    v = values[np.isfinite(values) & (values > 0)]
    return float(v.max() / v.min()) if len(v) and v.min() > 0 else 0.0


def log_scale_fits(values: np.ndarray) -> bool:
    """A positive quantity spanning more than three decades reads better on a log axis."""
    finite = values[np.isfinite(values)]
    return bool(len(finite)) and bool((finite > 0).all()) and positive_span(finite) > 1e3


def histogram(ax: Any, values: np.ndarray, *, colour: str = COLOURS[0], label: str | None = None,
              log: bool | None = None, bins: int = 40, density: bool = False) -> None:
    """A histogram; on log-spaced bins when the values span decades."""
    v = values[np.isfinite(values)]
    if not len(v):
        ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
        return
    use_log = log_scale_fits(v) if log is None else (log and bool((v > 0).all()))
    if use_log:  # the lowest 0.5% share the first bin: a few values near zero must not stretch the axis over decades
        lower = float(max(v.min(), np.quantile(v, 0.005)))
        v = np.clip(v, lower, None)
        edges = np.geomspace(lower, v.max(), bins + 1) if v.max() > lower else bins
        ax.set_xscale("log")
    elif v.min() == v.max():
        edges = np.array([v.min() - 0.5, v.min() + 0.5]) if v.min() == 0 else np.sort([v.min() * 0.99, v.min() * 1.01])
    else:
        edges = bins
    ax.hist(v, bins=edges, color=colour, alpha=0.75, label=label, density=density, histtype="stepfilled",
            edgecolor=colour)
