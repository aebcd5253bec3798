"""Self-contained SVG flame graphs (no flamegraph.pl, no JavaScript).

Root at the bottom, one box per function in a call path, width proportional
to time. Candidates from a ranking are coloured by score (yellow: some gain,
red: the best); other user functions are blue, library frames grey. Hovering
a box shows its name, seconds and share (an SVG ``<title>``).

Example
-------
>>> from phasm.profile.session import Frame, Session
>>> s = Session(); m = s.frame_id(Frame("app", "main", "app.py", 1))
>>> s.add("MainThread", (m,), on_cpu=0.5)
>>> svg = render_svg(s, "on")
>>> svg.startswith("<?xml") and "main (app.py:1)" in svg
True
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path
from typing import Any, Mapping

from phasm.profile.session import Session

_TITLES = {"on": "on-CPU", "off": "off-CPU (waiting: I/O, locks, sleep)", "wall": "wall time"}


class _Node:
    __slots__ = ("frame", "weight", "children")

    def __init__(self, frame: int) -> None:
        self.frame = frame
        self.weight = 0.0
        self.children: dict[int, _Node] = {}


def _tree(session: Session, view: str, fold_library: bool) -> _Node:
    root = _Node(-1)
    for stack, x in session.items(view):
        node = root
        root.weight += x
        for i in (session.fold(stack) if fold_library else stack):
            child = node.children.get(i)
            if child is None:
                child = node.children[i] = _Node(i)
            child.weight += x
            node = child
    return root


def _colour(score: float | None, library: bool) -> str:
    if score is not None:
        s = min(max(score, 0.0), 1.0)  # yellow (255,220,60) -> red (220,40,30)
        r, g, b = int(255 - 35 * s), int(220 - 180 * s), int(60 - 30 * s)
        return f"rgb({r},{g},{b})"
    return "rgb(200,200,200)" if library else "rgb(150,185,225)"


def render_svg(session: Session, view: str, *, scores: Mapping[int, float] | None = None, title: str | None = None,
               width: int = 1200, row: int = 17, min_px: float = 0.4, fold_library: bool = True) -> str:
    """An SVG flame graph of one view ('on', 'off' or 'wall'); ``scores`` maps frame id -> [0, 1]."""
    if width < 200:
        raise ValueError(f"width must be >= 200 pixels, got {width}")
    scores = dict(scores or {})
    root = _tree(session, view, fold_library)
    total = root.weight
    boxes: list[tuple[float, int, float, int]] = []  # x, depth, w, frame
    depth_max = 0
    pad = 10
    scale = (width - 2 * pad) / total if total > 0 else 0.0

    stack: list[tuple[Any, float, int]] = [(root, pad, 0)]
    while stack:
        node, x, depth = stack.pop()
        cx = x
        for child in sorted(node.children.values(), key=lambda n: session.frames[n.frame].label):
            w = child.weight * scale
            if w >= min_px:
                boxes.append((cx, depth, w, child.frame))
                depth_max = max(depth_max, depth + 1)
                stack.append((child, cx, depth + 1))
            cx += w
    head = 50
    height = head + (depth_max + 1) * row + 30
    title = title or f"{_TITLES.get(view, view)}: {' '.join(session.command)}"
    out = [
        '<?xml version="1.0" standalone="no"?>',
        f'<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Verdana, sans-serif" font-size="11">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="rgb(250,250,245)"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="15">{escape(title)}</text>',
        f'<text x="{width / 2}" y="38" text-anchor="middle" fill="rgb(90,90,90)">total {total:.3f} s, '
        f'{session.n_samples} samples at {session.rate_hz:g} Hz ({escape(session.sampler)}); '
        f'candidates yellow (some gain) to red (best), other code blue, libraries grey</text>',
    ]
    base = height - 30
    for x, depth, w, fid in boxes:
        f = session.frames[fid]
        y = base - (depth + 1) * row
        share = (w / scale) / total if total > 0 else 0.0
        score = scores.get(fid)
        tip = f"{f.module}:{f.qualname} ({f.file}:{f.line}) {w / scale:.4f} s, {share:.1%}"
        if score is not None:
            tip += f", candidate score {score:.2f}"
        out.append(f'<g data-label="{escape(f.label)}"><title>{escape(tip)}</title><rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{row - 1}" '
                   f'rx="2" fill="{_colour(score, f.library)}"/>')
        chars = int((w - 6) / 6.5)
        if chars >= 3:
            label = f.label if len(f.label) <= chars else f.label[: chars - 2] + ".."
            out.append(f'<text x="{x + 3:.2f}" y="{y + row - 5}">{escape(label)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_svg(session: Session, view: str, path: str | os.PathLike[str], **kw) -> Path:
    path = Path(path)
    path.write_text(render_svg(session, view, **kw))
    return path
