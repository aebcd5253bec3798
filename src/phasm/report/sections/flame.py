"""Profile: the on-CPU and off-CPU flame graphs, drawn by phasm.profile's SVG renderer, inline.

Inline SVG needs no namespace declaration in HTML, so none is written; boxes keep their
``<title>`` (hover: name, seconds, share) and, with JavaScript, zoom on click.
"""

from __future__ import annotations

import re

from phasm.report.html import Html, esc, join, key_values, note, seconds
from phasm.report.model import ProfileData

PART = "profile"
ID = "flame"
TITLE = "Flame graphs"
VIEWS = {"on": "on-CPU time (running Python and native code)", "off": "off-CPU time (waiting: I/O, locks, sleep)"}
_OPEN = re.compile(r"<svg\b[^>]*>")
_VIEWBOX = re.compile(r'viewBox="([0-9. ]+)"')


def inline_svg(svg: str, label: str) -> Html:
    """An SVG document as an inline ``<svg>`` element: no XML declaration, no namespace, scalable, labelled."""
    m = _OPEN.search(svg)
    if m is None:
        raise ValueError("not an SVG document")
    box = _VIEWBOX.search(m.group(0))
    view_box = box.group(1) if box else "0 0 1200 400"
    open_tag = (f'<svg class="flame" viewBox="{view_box}" role="img" aria-label="{esc(label)}" '
                'font-family="Verdana, sans-serif" font-size="11" preserveAspectRatio="xMinYMin meet">')
    return Html(open_tag + svg[m.end():])


def render(p: ProfileData) -> Html | None:
    about = key_values([("command", " ".join(p.command)), ("sampler", f"{p.sampler}, {p.rate_hz:g} Hz"),
                        ("samples", p.n_samples), ("run time", seconds(p.duration_s)),
                        ("shares within", p.root or "the whole run"),
                        ("on-CPU / off-CPU seconds", f"{p.totals.get('on', 0.0):.3g} / {p.totals.get('off', 0.0):.3g}")])
    graphs = []
    for view, what in VIEWS.items():
        if view in p.flames:
            graphs.append(Html(f"<h4>{esc(what)}</h4>"))
            graphs.append(inline_svg(p.flames[view], f"Flame graph of {what} of {' '.join(p.command)}"))
    hint = note("Root at the bottom, width = time. Candidates yellow (some gain) to red (the best), other code blue, "
                "libraries grey. Hover a box for its name and time; click one to zoom into it, click the background "
                "to zoom out (zoom needs JavaScript).") if graphs else None
    return join([about, hint, *graphs, *(note(n) for n in p.notes)])
