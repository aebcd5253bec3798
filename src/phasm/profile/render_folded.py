"""Folded-stack text: one ``frame;frame;frame count`` line per stack (Brendan Gregg's format).

Counts are microseconds, so ``flamegraph.pl``, inferno, speedscope and
``phasm`` itself read the files; library frames are folded like the flame graphs.

Example
-------
>>> from phasm.profile.session import Frame, Session
>>> s = Session(); m = s.frame_id(Frame("app", "main", "app.py", 1))
>>> s.add("MainThread", (m,), on_cpu=0.5)
>>> render_folded(s, "on")
'main (app.py:1) 500000\\n'
"""

from __future__ import annotations

import os
from pathlib import Path

from phasm.profile.session import Session


def render_folded(session: Session, view: str, *, fold_library: bool = True) -> str:
    """Folded stacks of one view ('on', 'off' or 'wall'), heaviest first."""
    folded = session.folded(view, fold_library=fold_library)
    return "".join(f"{k} {v}\n" for k, v in sorted(folded.items(), key=lambda kv: (-kv[1], kv[0])))


def write_folded(session: Session, view: str, path: str | os.PathLike[str], **kw) -> Path:
    path = Path(path)
    path.write_text(render_folded(session, view, **kw))
    return path


def parse_folded(text: str) -> dict[str, int]:
    """Read folded-stack text back: ``{"a;b;c": count}``."""
    out: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        stack, _, count = line.rstrip().rpartition(" ")
        try:
            c = int(count)
        except ValueError:
            raise ValueError(f"folded line {n}: expected 'frames count', got {line!r}") from None
        out[stack] = out.get(stack, 0) + c
    return out
