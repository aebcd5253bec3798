"""Surrogate: what the capture store holds: rows, per-variable ranges, histograms."""

from __future__ import annotations

from phasm.report.html import Html, join, key_values, note, table
from phasm.report.model import SurrogateData
from phasm.report.plots import embed, figure, gallery, histogram
from phasm.report.sample import MAX_HISTOGRAM_VALUES, describe_shape

PART = "surrogate"
ID = "data"
TITLE = "Data"
MAX_HISTOGRAMS = 24


def render(s: SurrogateData) -> Html | None:
    d = s.data
    if d is None:
        return None
    about = key_values([("capture store", d.store), ("rows", d.n_rows),
                        ("files (main file and shards)", d.n_files),
                        ("rows drawn in the histograms", d.sampled_rows if d.sampled_rows < d.n_rows else f"all {d.n_rows}")])
    rows = []
    for c in d.columns:
        st = c.stats
        rows.append([c.key, describe_shape(c.shape), st.get("count"), st.get("nonfinite"), st.get("min"), st.get("max"),
                     st.get("mean"), st.get("std")])
    stats = table(["variable", "shape", "values", "non-finite", "min", "max", "mean", "std"], rows,
                  caption=f"Per variable, over every element of all {d.n_rows} rows (non-finite values left out)")
    figs = []
    for c in d.columns[:MAX_HISTOGRAMS]:
        fig, ax = figure(3.4, 2.4)
        histogram(ax, c.sample)
        ax.set_title(f"{c.key}" + ("" if not c.shape else f" ({describe_shape(c.shape)}, all elements)"), fontsize=9)
        ax.set_ylabel("count", fontsize=8)
        figs.append(embed(fig, alt=f"Histogram of the captured values of {c.key}",
                          caption=f"{c.key}: {len(c.sample)} values" + (" (sampled)" if len(c.sample) == MAX_HISTOGRAM_VALUES
                                                                       else "")))
    more = note(f"histograms of the first {MAX_HISTOGRAMS} of {len(d.columns)} variables") \
        if len(d.columns) > MAX_HISTOGRAMS else None
    return join([about, stats, gallery(figs), more])
