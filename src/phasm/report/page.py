"""The page: one self-contained HTML file from a :class:`~phasm.report.model.ReportData`.

Styles and the one script are inline, figures are data URIs or inline SVG, and a Content
Security Policy forbids the page to load anything: it opens from a mail attachment, offline,
the same as on the machine that wrote it. Everything reads without JavaScript; the script only
adds zoom to the flame graphs.

Example
-------
>>> from phasm.report.model import ReportData
>>> page = render_page(ReportData(title="empty", created="now", phasm_version="0.1.0"))
>>> page.startswith("<!DOCTYPE html>") and "http://" not in page and "https://" not in page
True
"""

from __future__ import annotations

from typing import Any

from phasm.report.html import Html, esc, join, note, table
from phasm.report.model import ReportData
from phasm.report.sections import SECTIONS

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; color: #1d2330; background: #fff; line-height: 1.45;
       font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; }
header { background: #1f3b5a; color: #fff; padding: 1.1rem 2rem; }
header h1 { margin: 0 0 .3rem; font-size: 1.6rem; }
header p { margin: 0; color: #d6e2ef; font-size: .9rem; }
main { max-width: 1200px; margin: 0 auto; padding: 1rem 2rem 3rem; }
nav { background: #f5f7fa; border: 1px solid #dde3ea; padding: .6rem 1rem; margin: 1rem 0; }
nav ul { margin: .2rem 0; padding-left: 1.2rem; }
nav li { margin: .1rem 0; }
a { color: #1f5fa8; }
section.part { border-top: 3px solid #1f3b5a; margin-top: 2.2rem; }
section.part > h2 { font-size: 1.35rem; margin: .6rem 0; }
section.section { margin: 1.2rem 0 1.8rem; }
h3 { font-size: 1.12rem; margin: .4rem 0 .5rem; border-bottom: 1px solid #dde3ea; padding-bottom: .2rem; }
h4 { font-size: .98rem; margin: 1rem 0 .4rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .86rem; max-width: 100%; }
caption { caption-side: top; text-align: left; font-size: .82rem; color: #4a5566; padding: .2rem 0; }
th, td { border: 1px solid #d0d7de; padding: .22rem .55rem; text-align: left; vertical-align: top; }
thead th { background: #eef2f6; }
tbody th { background: #f8fafc; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem 1.4rem; align-items: flex-start; }
figure { margin: 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e7ec; display: block; }
figcaption { font-size: .8rem; color: #4a5566; max-width: 28rem; margin-top: .2rem; }
svg.flame { width: 100%; height: auto; border: 1px solid #e3e7ec; display: block; margin: .3rem 0 1rem; }
.note { color: #5c4400; background: #fff8e1; border-left: 3px solid #e0b000; padding: .3rem .7rem; font-size: .88rem; }
code { background: #f1f3f5; padding: 0 .25rem; border-radius: 3px; }
footer { color: #6b7685; font-size: .8rem; border-top: 1px solid #dde3ea; margin-top: 3rem; padding-top: .6rem; }
@media print { header { background: none; color: #000; } header p { color: #333; } nav { display: none; } }
"""

# Zoom for the flame graphs: click a box to widen it (its ancestors span the width, its callees scale with it),
# click the background to zoom out. Labels are re-cut to the new widths from each box's data-label.
SCRIPT = """
(function () {
  "use strict";
  var PAD = 10, CHAR = 6.5;
  function cut(label, w) {
    var n = Math.floor((w - 6) / CHAR);
    if (n < 3) { return ""; }
    return label.length <= n ? label : label.slice(0, n - 2) + "..";
  }
  document.querySelectorAll("svg.flame").forEach(function (svg) {
    var W = svg.viewBox.baseVal.width, boxes = [];
    svg.querySelectorAll("g[data-label]").forEach(function (g) {
      var r = g.querySelector("rect");
      if (!r) { return; }
      var t = g.querySelector("text");
      if (!t) {
        t = document.createElementNS(svg.namespaceURI, "text");
        t.setAttribute("y", String(Number(r.getAttribute("y")) + Number(r.getAttribute("height")) - 4));
        g.appendChild(t);
      }
      boxes.push({g: g, r: r, t: t, x: Number(r.getAttribute("x")), w: Number(r.getAttribute("width")),
                  y: Number(r.getAttribute("y")), label: g.getAttribute("data-label")});
    });
    function draw(x0, w0, y0) {
      var k = (W - 2 * PAD) / w0, eps = 1e-6;
      boxes.forEach(function (b) {
        var nx, nw;
        if (b.y <= y0 && b.x >= x0 - eps && b.x + b.w <= x0 + w0 + eps) { nx = PAD + (b.x - x0) * k; nw = b.w * k; }
        else if (b.y > y0 && b.x <= x0 + eps && b.x + b.w >= x0 + w0 - eps) { nx = PAD; nw = W - 2 * PAD; }
        else { b.g.style.display = "none"; return; }
        b.g.style.display = "";
        b.r.setAttribute("x", nx.toFixed(2));
        b.r.setAttribute("width", nw.toFixed(2));
        b.t.setAttribute("x", (nx + 3).toFixed(2));
        b.t.textContent = cut(b.label, nw);
      });
    }
    svg.style.cursor = "pointer";
    svg.addEventListener("click", function (e) {
      var g = e.target.closest ? e.target.closest("g[data-label]") : null;
      var b = null;
      boxes.forEach(function (c) { if (c.g === g) { b = c; } });
      if (b) { draw(b.x, b.w, b.y); } else { draw(PAD, W - 2 * PAD, Infinity); }
    });
  });
})();
"""

PART_TITLES = {"surrogate": "Surrogate", "profile": "Profile", "cost": "Cost model"}
MISSING = {
    "surrogate": "No surrogate: add a model folder (phasm.json) and its capture store as targets.",
    "profile": "No profile: add a 'phasm profile --out DIR' folder for flame graphs and ranked candidates.",
    "cost": "No cost model: add a 'phasm bench --out DIR' folder for the cost per call and the predicted speedup.",
}


def _parts(data: ReportData) -> list[tuple[str, str, str, Any]]:
    """``(part id, kind, heading, item)`` in page order."""
    out: list[tuple[str, str, str, Any]] = []
    for k, s in enumerate(data.surrogates, 1):
        out.append((f"surrogate-{k}", "surrogate", f"Surrogate: {s.name}", s))
    for k, p in enumerate(data.profiles, 1):
        out.append((f"profile-{k}", "profile", f"Profile: {' '.join(p.command) or p.path}", p))
    for k, c in enumerate(data.costs, 1):
        out.append((f"cost-{k}", "cost", f"Cost model: {c.function}", c))
    return out


def render_page(data: ReportData) -> str:
    """The whole report as one HTML document."""
    parts, toc = [], []
    for part_id, kind, heading, item in _parts(data):
        sections, links = [], []
        for mod in SECTIONS:
            if mod.PART != kind:
                continue
            body = mod.render(item)
            if body is None:
                continue
            sid = f"{part_id}-{mod.ID}"
            sections.append(f'<section class="section" id="{sid}" data-section="{esc(mod.ID)}">'
                            f"<h3>{esc(mod.TITLE)}</h3>\n{body}\n</section>")
            links.append(f'<li><a href="#{sid}">{esc(mod.TITLE)}</a></li>')
        notes = getattr(item, "notes", [])
        extra = join([note(n) for n in notes]) if kind == "surrogate" else ""
        parts.append(f'<section class="part" id="{part_id}" data-part="{kind}"><h2>{esc(heading)}</h2>{extra}'
                     + "\n".join(sections) + "</section>")
        toc.append(f'<li><a href="#{part_id}">{esc(heading)}</a><ul>{"".join(links)}</ul></li>')
    kinds = {k for _, k, _, _ in _parts(data)}
    missing = join([note(MISSING[k]) for k in PART_TITLES if k not in kinds])
    targets = table(["target", "read as"], [[p, k] for p, k in data.targets], caption="What this report was made from") \
        if data.targets else Html("")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="phasm {esc(data.phasm_version)}">
<title>{esc(data.title)}</title>
<link rel="icon" href="data:,">
<style>{STYLE}</style>
</head>
<body>
<header><h1>{esc(data.title)}</h1><p>Written {esc(data.created)} by phasm {esc(data.phasm_version)}. One file: no network, no JavaScript needed.</p></header>
<main>
<nav aria-label="Contents"><strong>Contents</strong><ul>{"".join(toc)}</ul></nav>
{targets}
{missing}
{"".join(parts)}
<footer>phasm report. Figures drawn with matplotlib; flame graphs by phasm.profile. Numbers come from the files listed above.</footer>
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""
