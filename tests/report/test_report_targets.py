"""`phasm report` over the profile_driver example's targets: every section, right numbers, one-line errors,
nothing from a file reaching the page unescaped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from page_checks import network_references, parse
from phasm.cli import app
from phasm.errors import ReportError
from phasm.report import build_report, classify, collect

EXPECTED = {("surrogate", s) for s in ("spec", "data", "training", "accuracy", "gate", "production")} | {
    ("profile", "flame"), ("profile", "candidates"), ("cost", "cost")}


def test_every_section_and_a_self_contained_page(driver_report: Path) -> None:
    html = driver_report.read_text()
    page = parse(html)
    assert set(page.sections) == EXPECTED
    assert network_references(html) == [] and page.external == []
    assert page.scripts == 1 and len(page.svgs) == 2
    assert len(page.images) >= 15
    assert all(img["alt"].strip() and img["src"].startswith("data:image/png;base64,") for img in page.images)
    assert page.tables and all(t["th_head"] >= 2 for t in page.tables)
    assert 'http-equiv="Content-Security-Policy" content="default-src \'none\'' in html


def test_collected_numbers_match_the_artefacts(driver_targets: dict[str, Path]) -> None:
    from phasm.gate import gate_from_json
    from phasm.profile.costmodel import CostModel
    from phasm.store import CaptureStore
    from phasm.train import ModelArtefact, per_call_relative_error

    assert {k: classify(p) for k, p in driver_targets.items()} == {
        "model": "model", "store": "store", "profile": "profile", "bench": "bench"}
    d = collect([driver_targets[k] for k in ("bench", "profile", "store", "model")])  # any order
    assert [k for _, k in d.targets] == ["bench", "profile", "store", "model"]
    s, = d.surrogates
    store = CaptureStore(driver_targets["store"])
    art = ModelArtefact.load(driver_targets["model"])
    assert s.data is not None and s.data.n_rows == len(store)
    n_used = sum(art.training[k] for k in ("n_train", "n_val", "calibration_rows"))
    assert n_used < len(store)  # shadow-mode rows came after training
    X, Y = store.matrices(dtype=np.float64)
    P = art.predict(X.astype(np.float32))
    rel = per_call_relative_error(Y, P)
    assert s.accuracy is not None
    np.testing.assert_allclose(np.sort(s.accuracy.outputs[0].rel_error), np.sort(rel), rtol=1e-6)
    assert s.accuracy.after_training.sum() == len(store) - n_used
    gate = gate_from_json(art.sections["gate"])
    later = slice(n_used, None)
    accepted = np.asarray(gate.accept(X[later].astype(np.float32), P[later], art), bool)
    assert s.gate is not None and s.gate.operating is not None
    assert s.gate.operating["accepted"] == int(accepted.sum())
    assert s.gate.report is not None and s.gate.report["certified"]
    assert s.production is not None and s.production.replay is not None
    assert s.production.replay.rows.tolist() == list(range(n_used, len(store)))
    cost, = d.costs
    ref = CostModel.load(driver_targets["bench"] / "cost.json")
    assert cost.s_eff == pytest.approx(ref.s_eff) and cost.function == ref.function == "kernels:heat_midpoint"
    prof, = d.profiles
    assert cost.p == pytest.approx(next(c["p"] for c in prof.candidates if c["name"] == cost.function))


def test_cli_writes_the_report(driver_targets: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "sub" / "r.html"
    res = CliRunner().invoke(app, ["report", *(str(driver_targets[k]) for k in ("model", "store")), "--out", str(out),
                                   "--title", "heat midpoint <check>", "--max-rows", "300"])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and out.is_file()
    html = out.read_text()
    assert "<title>heat midpoint &lt;check&gt;</title>" in html
    assert {s for _, s in parse(html).sections} == {"spec", "data", "training", "accuracy", "gate", "production"}
    assert "No profile" in html and "No cost model" in html


def _file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing", "no such file or folder"),
    (lambda d: d, "none of a model folder"),
    (lambda d: _file(d / "x.h5", "not hdf5"), "not a readable phasm capture store"),
    (lambda d: _file(d / "cost.json", "{}"), "give the folder that holds it"),
])
def test_bad_targets_are_one_line_errors(tmp_path: Path, make, message: str) -> None:
    target = make(tmp_path)
    with pytest.raises(ReportError, match=message):
        collect([target])
    res = CliRunner().invoke(app, ["report", str(target), "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 1 and "error:" in res.output and message.split()[0] in res.output
    assert not (tmp_path / "r.html").exists()


def test_malformed_bench_and_profile_files_name_the_field(driver_targets: dict[str, Path], tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    shutil.copytree(driver_targets["bench"], bench)
    cost = json.loads((bench / "cost.json").read_text())
    (bench / "cost.json").write_text(json.dumps({**cost, "t_orig_s": "fast"}))
    with pytest.raises(ReportError, match=r"cost.json: field 't_orig_s' must be a number, got 'fast'"):
        collect([bench])
    prof = tmp_path / "profile"
    shutil.copytree(driver_targets["profile"], prof)
    (prof / "session.json").write_text('{"format": "phasm-profile-session/1", "frames": [], "stacks": [["t", [7], 1, 0]],'
                                       ' "duration_s": 1, "rate_hz": 1, "n_samples": 1, "sampler": "x", "command": [],'
                                       ' "main_thread": "t"}')
    with pytest.raises(ReportError, match="frame ids outside"):
        collect([prof])


def test_a_tampered_model_folder_is_refused(driver_targets: dict[str, Path], tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(driver_targets["model"], model)
    weights = next(p for p in model.iterdir() if p.name != "phasm.json")
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ReportError, match=f"model folder {model}"):
        collect([model])


def test_names_from_files_are_escaped(driver_targets: dict[str, Path], tmp_path: Path) -> None:
    prof = tmp_path / "profile"
    shutil.copytree(driver_targets["profile"], prof)
    cands = json.loads((prof / "candidates.json").read_text())
    cands[0]["name"] = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    cands[0]["file"] = '"><svg onload=alert(2)>'
    (prof / "candidates.json").write_text(json.dumps(cands))
    html = build_report([prof], tmp_path / "r.html", title="<b>t</b>").read_text()
    assert "<script>alert" not in html and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "<svg onload" not in html
    assert parse(html).scripts == 1
