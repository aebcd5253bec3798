"""Speedscope JSON (https://www.speedscope.app): one sampled profile per view.

Example
-------
>>> from phasm.profile.session import Frame, Session
>>> s = Session(); m = s.frame_id(Frame("app", "main", "app.py", 1))
>>> s.add("MainThread", (m,), on_cpu=0.5, off_cpu=0.25)
>>> doc = render_speedscope(s)
>>> [p["name"] for p in doc["profiles"]], doc["profiles"][1]["weights"]
(['on-CPU', 'off-CPU'], [0.25])
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from phasm.profile.session import Session

_NAMES = {"on": "on-CPU", "off": "off-CPU", "wall": "wall"}


def render_speedscope(session: Session, views: tuple[str, ...] = ("on", "off"), *,
                      fold_library: bool = True) -> dict[str, Any]:
    """A speedscope document with one ``sampled`` profile (weights in seconds) per view."""
    frames = [{"name": f.qualname, "file": f.file, "line": f.line} for f in session.frames]
    profiles = []
    for view in views:
        samples, weights = [], []
        for stack, x in session.items(view):
            samples.append(list(session.fold(stack) if fold_library else stack))
            weights.append(x)
        profiles.append({"type": "sampled", "name": _NAMES[view], "unit": "seconds", "startValue": 0,
                         "endValue": sum(weights), "samples": samples, "weights": weights})
    return {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": frames}, "profiles": profiles, "activeProfileIndex": 0,
        "exporter": "phasm", "name": " ".join(session.command) or "phasm profile",
    }


def write_speedscope(session: Session, path: str | os.PathLike[str], **kw) -> Path:
    path = Path(path)
    path.write_text(json.dumps(render_speedscope(session, **kw)))
    return path
