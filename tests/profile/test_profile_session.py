"""Session data model, folded text and speedscope output."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phasm.profile.render_folded import parse_folded, render_folded
from phasm.profile.render_speedscope import render_speedscope
from phasm.profile.session import Frame, Session, is_library_file, module_for_file


def make_session() -> Session:
    s = Session(command=["python", "app.py"], rate_hz=100, n_samples=10, duration_s=1.0)
    main = s.frame_id(Frame("app", "main", "/src/app.py", 1))
    work = s.frame_id(Frame("app", "work", "/src/app.py", 10))
    lib1 = s.frame_id(Frame("numpy.linalg", "solve", "/x/site-packages/numpy/linalg.py", 5, library=True))
    lib2 = s.frame_id(Frame("numpy.linalg", "_inner", "/x/site-packages/numpy/linalg.py", 50, library=True))
    s.add("MainThread", (main, work, lib1, lib2), on_cpu=0.5, off_cpu=0.1)
    s.add("MainThread", (main,), on_cpu=0.1, off_cpu=0.3)
    return s


def test_totals_and_views():
    s = make_session()
    assert s.total("on") == pytest.approx(0.6)
    assert s.total("off") == pytest.approx(0.4)
    assert s.total("wall") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="view must be one of"):
        s.total("cpu")
    with pytest.raises(ValueError, match="on_cpu and off_cpu must be >= 0"):
        s.add("MainThread", (0,), on_cpu=-1.0)


def test_fold_keeps_first_library_frame_only():
    s = make_session()
    folded = s.folded("on")
    assert folded == {"main (app.py:1);work (app.py:10);solve (linalg.py:5)": 500000, "main (app.py:1)": 100000}
    unfolded = s.folded("on", fold_library=False)
    assert "main (app.py:1);work (app.py:10);solve (linalg.py:5);_inner (linalg.py:50)" in unfolded


def test_folded_text_round_trip():
    s = make_session()
    text = render_folded(s, "off")
    assert text.splitlines()[0] == "main (app.py:1) 300000"  # heaviest first
    assert parse_folded(text) == s.folded("off")
    with pytest.raises(ValueError, match="folded line 1"):
        parse_folded("a;b notanumber\n")


def test_merge_adds_time_and_reindexes_frames():
    a, b = make_session(), make_session()
    b.frames.reverse()  # same frames, other ids
    b._index = {f: i for i, f in enumerate(b.frames)}
    b.stacks = {(th, tuple(len(b.frames) - 1 - i for i in st)): w for (th, st), w in b.stacks.items()}
    a.merge(b)
    assert a.total("wall") == pytest.approx(2.0)
    assert len(a.frames) == 4
    assert a.folded("on")["main (app.py:1)"] == 200000


def test_speedscope_document():
    s = make_session()
    doc = render_speedscope(s)
    assert [p["name"] for p in doc["profiles"]] == ["on-CPU", "off-CPU"]
    on = doc["profiles"][0]
    assert sum(on["weights"]) == pytest.approx(0.6)
    assert all(0 <= i < len(doc["shared"]["frames"]) for sample in on["samples"] for i in sample)
    json.dumps(doc)


def test_library_detection_and_module_names(tmp_path):
    assert is_library_file(json.__file__)
    assert is_library_file("<frozen importlib._bootstrap>")
    assert not is_library_file(str(tmp_path / "mine.py"))
    (tmp_path / "pkg").mkdir()
    assert module_for_file(str(tmp_path / "pkg" / "mod.py"), [str(tmp_path)]) == "pkg.mod"
    assert module_for_file(str(tmp_path / "pkg" / "__init__.py"), [str(tmp_path)]) == "pkg"


def test_from_json_rejects_bad_input():
    with pytest.raises(ValueError, match="not a phasm profile session"):
        Session.from_json({"format": "other"})
    d = make_session().to_json()
    d["stacks"].append(["MainThread", [99], 1.0, 0.0])
    with pytest.raises(ValueError, match="outside 0..3"):
        Session.from_json(d)


names = st.text("abcdefgh_", min_size=1, max_size=6)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["MainThread", "worker"]),
                          st.lists(st.integers(0, 4), min_size=1, max_size=5),
                          st.floats(0, 10, allow_nan=False), st.floats(0, 10, allow_nan=False)), max_size=12),
       st.lists(names, min_size=5, max_size=5, unique=True))
def test_json_round_trip(stacks, quals):
    s = Session(command=["python", "x.py"], rate_hz=50.0)
    for k, q in enumerate(quals):
        s.frame_id(Frame("m", q, "x.py", k, library=k % 2 == 1))
    for th, st_, on, off in stacks:
        s.add(th, tuple(st_), on, off)
    back = Session.from_json(json.loads(json.dumps(s.to_json())))
    assert back.frames == s.frames
    assert back.stacks == s.stacks
    for view in ("on", "off", "wall"):
        assert back.total(view) == pytest.approx(s.total(view))


def test_pyspy_raw_parsing_names_threads_by_id():
    from phasm.profile.sampler_pyspy import parse_raw

    raw = (
        "thread (101): MainThread;<module> (<string>:2);run_path (<frozen runpy>:291);"
        "<module> (/w/app.py:1);work (/w/app.py:5) 3\n"
        "thread (101);<module> (/w/app.py:1);work (/w/app.py:5) 2\n"
        "thread (202): Thread-1;run (/usr/lib/python3.11/threading.py:971) 4\n"
    )
    s = Session()
    out = parse_raw(raw, s, "wall", 100.0, ["/w"])
    by_thread = {}
    for (th, st), sec in out.items():
        by_thread.setdefault(th, []).append(([s.frames[i].qualname for i in st], sec))
    assert set(by_thread) == {"MainThread", "Thread-1"}  # the unnamed sample of thread 101 is MainThread
    assert by_thread["MainThread"] == [(["<module>", "work"], pytest.approx(0.05))]  # launcher frames stripped
    work = [f for f in s.frames if f.qualname == "work"][0]
    assert work.module == "app" and not work.library
    assert [f for f in s.frames if f.qualname == "run"][0].library
