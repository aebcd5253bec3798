"""Collect ``phasm profile --out`` folders (flame graphs, candidates) and ``phasm bench --out`` folders (cost model).

Both are read as data: ``session.json`` through :class:`~phasm.profile.session.Session`, the flame
graphs drawn again by phasm.profile's SVG renderer (coloured by the ranked candidates), ``cost.json``
checked field by field. Nothing in them is imported or called.

Example
-------
>>> number({"x": 2}, "x", "cost.json")
2.0
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from phasm.errors import ReportError
from phasm.profile.ranking import Candidate, Ranking, display_name
from phasm.profile.render_svg import render_svg
from phasm.profile.session import Session
from phasm.report.model import CostData, ProfileData

CANDIDATE_FIELDS = ("name", "file", "line", "p", "p_on", "p_off", "self_share", "seconds", "s", "s_source", "amdahl",
                    "speedup", "gustafson")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: cannot be read as JSON ({exc})") from None


def number(d: dict[str, Any], key: str, where: str, allow_none: bool = False) -> float:
    """``d[key]`` as a float; a missing or non-numeric value is an error naming the field."""
    value = d.get(key)
    if value is None and allow_none:
        return math.inf  # candidates.json writes an infinite speedup as null
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ReportError(f"{where}: field {key!r} must be a number, got {value!r}")
    return float(value)


def candidate(d: Any, where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ReportError(f"{where}: each candidate must be an object, got {type(d).__name__}")
    out: dict[str, Any] = {"name": str(d.get("name", "")), "file": str(d.get("file", "")),
                           "s_source": str(d.get("s_source", ""))}
    for key in ("line", "p", "p_on", "p_off", "self_share", "seconds", "s", "amdahl", "speedup", "gustafson"):
        out[key] = number(d, key, where, allow_none=key in ("amdahl", "speedup", "gustafson"))
    out["line"] = int(out["line"])
    return out


def collect_profile(folder: Path) -> ProfileData:
    """A profile output folder: the session, its candidates, and both flame graphs."""
    try:
        session = Session.from_json(read_json(folder / "session.json"))
    except (ValueError, KeyError, TypeError) as exc:
        raise ReportError(f"{folder / 'session.json'}: not a phasm profile session ({exc})") from None
    raw = read_json(folder / "candidates.json")
    if not isinstance(raw, list):
        raise ReportError(f"{folder / 'candidates.json'}: expected a list of candidates, got {type(raw).__name__}")
    cands = [candidate(c, str(folder / "candidates.json")) for c in raw]
    summary = read_json(folder / "summary.json") if (folder / "summary.json").is_file() else {}
    if not isinstance(summary, dict):
        summary = {}
    root = summary.get("root")
    totals = _mapping(summary.get("totals_s"))
    scores = Ranking(_with_frames(session, cands), totals={}, root=None, speed=1.0).scores()
    flames, notes = {}, []
    for view, what in (("on", "on-CPU"), ("off", "off-CPU")):
        if session.total(view) > 0:
            flames[view] = render_svg(session, view, scores=scores)
        else:
            notes.append(f"no {what} time was recorded: no {what} flame graph")
    return ProfileData(path=str(folder), command=[str(c) for c in session.command], sampler=session.sampler,
                       rate_hz=session.rate_hz, duration_s=session.duration_s, n_samples=session.n_samples,
                       root=str(root) if root else None, speed=_float(summary.get("speed")),
                       totals={str(k): float(v) for k, v in totals.items() if isinstance(v, (int, float))},
                       candidates=cands, flames=flames, notes=notes)


def _with_frames(session: Session, cands: list[dict[str, Any]]) -> list[Candidate]:
    """Candidates matched to the session's frames (by name, file and line), for colouring the flame graph."""
    ids = {(display_name(f), f.file, f.line): i for i, f in enumerate(session.frames)}
    out = []
    for c in cands:
        fid = ids.get((c["name"], c["file"], c["line"]))
        if fid is not None and math.isfinite(c["speedup"]):
            out.append(Candidate(**{k: c[k] for k in CANDIDATE_FIELDS}, frame_id=fid))
    return out


def collect_cost(folder: Path, profiles: list[ProfileData]) -> CostData:
    """A bench output folder (``cost.json``); the function's share ``p`` from a profile in the same report."""
    path = folder / "cost.json" if folder.is_dir() else folder
    d = read_json(path)
    if not isinstance(d, dict) or d.get("format") != "phasm-cost/1":
        raise ReportError(f"{path}: not a phasm cost model (format {d.get('format') if isinstance(d, dict) else None!r})")
    where = str(path)
    times = {k: number(d, k, where) for k in ("t_orig_s", "t_model_s", "t_gate_s", "fallback_rate")}
    if min(times.values()) < 0 or times["fallback_rate"] > 1:
        raise ReportError(f"{where}: times must be >= 0 and fallback_rate within [0, 1], got {times}")
    denom = times["t_model_s"] + times["t_gate_s"] + times["fallback_rate"] * times["t_orig_s"]
    function = str(d.get("function", ""))
    cost = CostData(path=str(folder), function=function, machine=str(d.get("machine", "")),
                    backend=str(d.get("backend", "")), t_orig_s=times["t_orig_s"], t_model_s=times["t_model_s"],
                    t_gate_s=times["t_gate_s"], fallback_rate=times["fallback_rate"],
                    rows_per_call=max(1, int(number(d, "rows_per_call", where))),
                    n_measured=int(d.get("n_measured") or 0),
                    s_eff=times["t_orig_s"] / denom if denom > 0 else math.inf,
                    model_curve=_curve(d.get("model_curve"), where, "model_curve"),
                    width_curves={str(dev): {str(w): _curve(c, where, f"width_curves.{dev}.{w}") for w, c in ws.items()}
                                  for dev, ws in _mapping(d.get("width_curves")).items() if isinstance(ws, dict)})
    for prof in profiles:
        for c in prof.candidates:
            if c["name"] == function:
                cost.p, cost.p_source = c["p"], f"the profile {prof.path}"
    return cost


def _curve(d: Any, where: str, name: str) -> dict[int, float]:
    if not d:
        return {}
    if not isinstance(d, dict):
        raise ReportError(f"{where}: {name} must map batch sizes to seconds, got {type(d).__name__}")
    try:
        return {int(k): float(v) for k, v in d.items()}
    except (TypeError, ValueError):
        raise ReportError(f"{where}: {name} must map batch sizes to seconds") from None


def _mapping(d: Any) -> dict[str, Any]:
    return d if isinstance(d, dict) else {}


def _float(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else 0.0
