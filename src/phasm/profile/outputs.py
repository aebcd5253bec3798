"""Write a profile's files: folded stacks, speedscope JSON, SVG flame graphs, candidates.json, session.json.

Example
-------
>>> from phasm.profile import record, rank, write_outputs     # doctest: +SKIP
>>> session = record(["python", "sim.py"])                    # doctest: +SKIP
>>> write_outputs(session, rank(session), "phasm-profile")    # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from phasm.profile.ranking import Ranking
from phasm.profile.render_folded import write_folded
from phasm.profile.render_speedscope import write_speedscope
from phasm.profile.render_svg import write_svg
from phasm.profile.session import Session

VIEW_FILES = {"on": "oncpu", "off": "offcpu"}


def write_outputs(session: Session, ranking: Ranking, out: str | os.PathLike[str]) -> dict[str, Path]:
    """Write every output into folder ``out`` (created); returns ``{kind: path}``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    scores = ranking.scores()
    for view, stem in VIEW_FILES.items():
        paths[f"{stem}.folded"] = write_folded(session, view, out / f"{stem}.folded")
        paths[f"{stem}.svg"] = write_svg(session, view, out / f"{stem}.svg", scores=scores)
        paths[f"{stem}.speedscope.json"] = write_speedscope(session, out / f"{stem}.speedscope.json", views=(view,))
    cand = out / "candidates.json"
    cand.write_text(json.dumps(ranking.to_json(), indent=1))
    paths["candidates.json"] = cand
    paths["session.json"] = session.save(out / "session.json")
    summary = {"command": session.command, "sampler": session.sampler, "rate_hz": session.rate_hz,
               "duration_s": session.duration_s, "n_samples": session.n_samples, "root": ranking.root,
               "speed": ranking.speed, "totals_s": ranking.totals, "dropped": ranking.dropped}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    paths["summary.json"] = out / "summary.json"
    return paths
