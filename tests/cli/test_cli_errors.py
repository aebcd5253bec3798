"""Every error the CLI prints is one line with a non-zero exit and no traceback; ``--debug`` shows it
(issue 10's CLI defects, issue 11's "the CLI catches PhasmError and OS errors, never TypeError")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import phasm
from phasm.cli import app
from phasm.errors import ArtefactError

runner = CliRunner()


def make_store(path: str = "cap/lin.h5", name: str = "demo.lin") -> Path:
    @phasm.surrogate(store=path, mode="capture", name=name)
    def lin(x: float, y: float) -> float:
        return 3.0 * x - y

    for x, y in np.random.default_rng(0).uniform(-1, 1, (120, 2)):
        lin(float(x), float(y))
    lin.close()
    return Path(path)


def train_model(out: str = "models/lin") -> Path:
    make_store()
    res = runner.invoke(app, ["train", "cap/lin.h5", "--out", out, "--backend", "ridge", "-p", "degree=1", "-q"])
    assert res.exit_code == 0, res.output
    return Path(out)


def one_error_line(res, code: int = 1) -> str:
    """The error, checked to be exactly one line on stderr, with ``code`` and no traceback."""
    assert res.exit_code == code, (res.exit_code, res.output, res.exception)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.output
    return lines[0]


def test_train_out_on_an_existing_non_model_folder(tmp_path: Path) -> None:
    make_store()
    Path("mine").mkdir()
    (Path("mine") / "thesis.tex").write_text("years of work")
    line = one_error_line(runner.invoke(app, ["train", "cap/lin.h5", "--out", "mine", "--backend", "ridge", "-q"]))
    assert line.startswith("error: --out: mine exists and is not a phasm model folder")
    assert (Path("mine") / "thesis.tex").read_text() == "years of work"


def test_train_out_under_a_file() -> None:
    make_store()
    Path("notes.txt").write_text("x")
    line = one_error_line(runner.invoke(app, ["train", "cap/lin.h5", "--out", "notes.txt/m", "--backend", "ridge"]))
    assert "notes.txt is a file, not a folder" in line
    line = one_error_line(runner.invoke(app, ["train", "cap/lin.h5", "--out", "notes.txt", "--backend", "ridge"]))
    assert "notes.txt exists and is a file" in line


@pytest.mark.parametrize("param, expected", [
    ('degree="x"', '--param degree="x": '),
    ("degree=0", "--param degree=0: ridge: degree must be >= 1"),
    ("degre=2", "--param degre: backend 'ridge' has no parameter 'degre'; it takes degree, alpha"),
    ("alpha=[1,2]", "--param alpha=[1, 2]: "),
    ("degree", "--param expects KEY=VALUE, got 'degree'"),
])
def test_bad_backend_parameters_are_named(param: str, expected: str) -> None:
    make_store()
    line = one_error_line(runner.invoke(app, ["train", "cap/lin.h5", "--out", "m", "--backend", "ridge", "-p", param]))
    assert expected in line, line
    assert not Path("m").exists()


def test_option_ranges() -> None:
    make_store()
    assert "--val-fraction must be within [0, 1), got 1" in one_error_line(
        runner.invoke(app, ["train", "cap/lin.h5", "--out", "m", "--val-fraction", "1"]))
    assert "--epochs must be >= 1, got 0" in one_error_line(
        runner.invoke(app, ["train", "cap/lin.h5", "--out", "m", "--epochs", "0"]))
    assert "--confidence must be within (0, 1), got 1" in one_error_line(
        runner.invoke(app, ["calibrate", "cap/lin.h5", "--out", "m", "--confidence", "1"]))
    assert "--rows must be >= 1, got 0" in one_error_line(
        runner.invoke(app, ["inspect", "x:y", "--rows", "0"]))


def test_bench_budget_must_be_positive() -> None:
    for budget in ("-1", "0"):
        line = one_error_line(runner.invoke(app, ["bench", "nowhere:fn", "--budget", budget]))
        assert f"--budget must be > 0, got {float(budget):g}" in line


def test_usage_errors_are_one_line_too() -> None:
    assert "Missing argument" in one_error_line(runner.invoke(app, ["train"]), code=2)
    assert "No such command 'trian'" in one_error_line(runner.invoke(app, ["trian"]), code=2)
    assert "Invalid value for '--budget'" in one_error_line(runner.invoke(app, ["bench", "a:b", "--budget", "x"]), code=2)


def test_a_tampered_model_is_one_line_in_info_and_gate() -> None:
    path = train_model()
    meta = json.loads((path / "phasm.json").read_text())
    meta["normalisation"]["x"]["mean"][0] += 1.0
    (path / "phasm.json").write_text(json.dumps(meta))
    for command in (["info", str(path)], ["gate", str(path)]):
        assert "phasm.json was changed after the model was saved" in one_error_line(runner.invoke(app, command))
    res = runner.invoke(app, ["--debug", "info", str(path)])
    assert isinstance(res.exception, ArtefactError)  # --debug: the exception (and its traceback) comes through


def test_info_shows_the_verified_digest() -> None:
    path = train_model()
    res = runner.invoke(app, ["info", str(path)])
    assert res.exit_code == 0, res.output
    digest = json.loads((path / "phasm.json").read_text())["manifest"]["digest"]
    assert f"verified: manifest digest {digest}" in res.output


def test_os_errors_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    make_store()
    from phasm.train.artefact import ModelArtefact

    def full(self, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(ModelArtefact, "save", full)
    line = one_error_line(runner.invoke(app, ["train", "cap/lin.h5", "--out", "m", "--backend", "ridge", "-q"]))
    assert "No space left on device" in line


def test_a_bug_is_not_dressed_as_an_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TypeError is a bug: the CLI lets it through with its traceback instead of one tidy line."""
    make_store()


    def buggy(*a, **k):
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

    import phasm.gate.calibrate

    monkeypatch.setattr(phasm.gate.calibrate, "train_gated", buggy)
    res = runner.invoke(app, ["train", "cap/lin.h5", "--out", "m", "--backend", "ridge", "-q"])
    assert isinstance(res.exception, TypeError) and "error:" not in res.output


def test_inspect_from_store_never_imports_the_name_inside(tmp_path: Path) -> None:
    """A store naming a module planted in the working directory: phasm shows the name, imports nothing."""
    marker = tmp_path / "marker"
    make_store("cap/evil.h5", name="planted_module.run")
    Path("planted_module.py").write_text(f"open({str(marker)!r}, 'w')\ndef run(x, y):\n    return x\n")
    line = one_error_line(runner.invoke(app, ["inspect", "--from-store", "cap/evil.h5"]))
    assert "records calls of 'planted_module.run'; phasm does not import a function named in a file" in line
    assert "phasm inspect planted_module:run --from-store cap/evil.h5" in line
    assert not marker.exists() and "planted_module" not in sys.modules


def test_real_process_prints_one_line_and_debug_prints_the_traceback() -> None:
    path = train_model()
    (path / "extra.txt").write_text("x")
    run = [sys.executable, "-c", "from phasm.cli import main; main()"]
    plain = subprocess.run([*run, "info", str(path)], capture_output=True, text=True, timeout=120)
    assert plain.returncode == 1 and plain.stdout == ""
    assert plain.stderr.strip().splitlines() == [f"error: {path}: 'extra.txt' is not part of the model (not listed in "
                                                 "phasm.json); a model folder holds only its own files"]
    debug = subprocess.run([*run, "--debug", "info", str(path)], capture_output=True, text=True, timeout=120)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert "phasm.errors.ArtefactError" in debug.stderr


def test_info_on_a_folder_that_is_no_model_says_what_it_expected(tmp_path):
    (tmp_path / "profile").mkdir()
    line = one_error_line(runner.invoke(app, ["info", str(tmp_path / "profile")]))
    assert "a folder without phasm.json; expected a model folder or a capture store (.h5)" in line
