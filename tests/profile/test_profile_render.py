"""SVG flame graphs and the output folder."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from phasm.profile.outputs import write_outputs
from phasm.profile.ranking import rank
from phasm.profile.render_folded import parse_folded
from phasm.profile.render_svg import render_svg
from phasm.profile.session import Frame, Session

NS = "{http://www.w3.org/2000/svg}"


def session() -> Session:
    s = Session(command=["python", "app.py"], rate_hz=100, n_samples=100, sampler="test")
    main = s.frame_id(Frame("app", "main", "app.py", 1))
    hot = s.frame_id(Frame("app", "hot", "app.py", 10))
    cold = s.frame_id(Frame("app", "cold", "app.py", 20))
    io = s.frame_id(Frame("socket", "recv", "/usr/lib/python3.11/socket.py", 5, library=True))
    s.add("MainThread", (main, hot), on_cpu=0.7)
    s.add("MainThread", (main, cold), on_cpu=0.1)
    s.add("MainThread", (main, cold, io), off_cpu=0.2)
    return s


def test_svg_is_valid_and_scaled():
    s = session()
    r = rank(s, root="main")
    svg = render_svg(s, "on", scores=r.scores(), width=1000)
    root = ET.fromstring(svg)
    rects = {g.find(f"{NS}title").text.split(" ")[0]: g.find(f"{NS}rect") for g in root.iter(f"{NS}g")}
    assert set(rects) == {"app:main", "app:hot", "app:cold"}  # no off-CPU-only frame in the on-CPU view
    w = {k: float(v.get("width")) for k, v in rects.items()}
    assert w["app:hot"] / w["app:main"] == pytest.approx(0.7 / 0.8, rel=1e-3)
    assert rects["app:hot"].get("fill") == "rgb(220,40,30)"  # best candidate: red
    assert rects["app:main"].get("fill") == "rgb(150,185,225)"  # the root: not a candidate
    off = ET.fromstring(render_svg(s, "off"))
    assert any("recv" in (t.text or "") for t in off.iter(f"{NS}title"))
    with pytest.raises(ValueError, match="width must be >= 200"):
        render_svg(s, "on", width=10)


def test_write_outputs(tmp_path):
    s = session()
    r = rank(s, root="main")
    paths = write_outputs(s, r, tmp_path / "out")
    names = {p.name for p in paths.values()}
    assert {"oncpu.folded", "offcpu.folded", "oncpu.svg", "offcpu.svg", "oncpu.speedscope.json",
            "offcpu.speedscope.json", "candidates.json", "session.json"} <= names
    cands = json.loads((tmp_path / "out" / "candidates.json").read_text())
    assert [c["name"] for c in cands] == ["app:hot", "app:cold"]
    assert cands[0]["p"] == pytest.approx(0.7) and cands[0]["amdahl"] == pytest.approx(1 / 0.3)
    assert set(cands[0]) >= {"name", "file", "line", "p", "p_on", "p_off", "amdahl", "speedup", "gustafson", "s"}
    assert parse_folded((tmp_path / "out" / "offcpu.folded").read_text()) == {
        "main (app.py:1);cold (app.py:20);recv (socket.py:5)": 200000}
    assert Session.load(tmp_path / "out" / "session.json").stacks == s.stacks
