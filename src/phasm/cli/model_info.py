"""``phasm info MODEL``: a model folder, verified first (manifest digest and every file), then described."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from phasm.cli.common import console, print_spec


NOT_RECORDED = "not recorded"


def _num(value: Any, fmt: str) -> str:
    """``value`` formatted as a number, or as text if the record holds something else."""
    if value is None:
        return NOT_RECORDED
    return format(value, fmt) if isinstance(value, (int, float)) and not isinstance(value, bool) else escape(str(value))


def _training_line(tr: dict[str, Any]) -> str:
    """One line on how the model was trained: the fields the record holds, "not recorded" for the rest.

    A model trained elsewhere (``fn.load_exported``, ``load_onnx``) records only where it came from.

    >>> _training_line({"n_train": 90, "n_val": 10, "epochs": 5, "seconds": 1.5, "device": "cpu"})
    'trained on 90 rows (10 validation), 5 epochs, 1.50 s on cpu'
    >>> _training_line({"source": "net.pt2", "trained": "elsewhere (torch.export program)"})
    'trained elsewhere (torch.export program), from net.pt2; rows, epochs and time not recorded'
    """
    if "trained" in tr:
        where = f"trained {escape(str(tr['trained']))}"
        if tr.get("source") is not None:
            where += f", from {escape(str(tr['source']))}"
        if tr.get("sha256") is not None:
            where += f" (sha256 {escape(str(tr['sha256']))})"
        return where + "; rows, epochs and time not recorded"
    if not any(tr.get(k) is not None for k in ("n_train", "n_val", "epochs", "seconds", "device")):
        return f"training: {NOT_RECORDED}"

    def field(key: str, fmt: str = "") -> str:
        value = tr.get(key)
        return NOT_RECORDED if value is None else (_num(value, fmt) if fmt else escape(str(value)))

    return (f"trained on {field('n_train')} rows ({field('n_val')} validation), {field('epochs')} epochs, "
            f"{field('seconds', '.2f')} s on {field('device')}")


def print_model_info(path: Path) -> None:
    """Print a verified model folder: spec, backend, digest, training record, validation error (a generative
    model: its distribution report), gate."""
    from phasm.train.artefact import ModelArtefact, spec_from_metadata

    meta = ModelArtefact.read_metadata(path)
    print_spec(spec_from_metadata(meta, path))
    b = meta["backend"]
    console.print(f"model: backend [bold]{escape(b['name'])}[/] {escape(str(b.get('version', '')))}, created "
                  f"{_num(meta.get('created'), '')}, phasm {_num(meta.get('phasm_version'), '')}")
    console.print(f"verified: manifest digest {meta['manifest']['digest']} over {escape(str(path / 'phasm.json'))} and "
                  f"{len(meta['files'])} weights file(s) (pin it with ModelArtefact.load(..., expect_digest=...))",
                  soft_wrap=True)
    record = meta.get("training")
    tr: dict[str, Any] = record if isinstance(record, dict) else {}
    elsewhere = tr.get("trained")
    label = "parameters" if elsewhere is None else "backend parameters (for serving; not how it was trained)"
    console.print(f"{label}: {escape(json.dumps(b.get('params', {})))}", soft_wrap=True)
    console.print(_training_line(tr), soft_wrap=True)
    recorded: dict[str, Any] = meta["transforms"] if isinstance(meta.get("transforms"), dict) else {}
    transforms = {n: t for n, t in recorded.items() if isinstance(t, dict) and t.get("kind") not in (None, "standardise")}
    if transforms:
        console.print("transforms: " + "; ".join(
            f"{escape(str(n))} {escape(str(t.get('kind')))}" + (f" ({escape(str(t['why']))})" if t.get("why") else "")
            for n, t in transforms.items()), soft_wrap=True)
    dropped: dict[str, Any] = tr["inputs_not_read"] if isinstance(tr.get("inputs_not_read"), dict) else {}
    for what, cols in dropped.items():
        if isinstance(cols, dict) and cols:
            console.print(f"{escape(str(what))} inputs, not read by the model (calls with other values fall back): "
                          + ", ".join(f"{escape(str(k))} = {escape(str(v))}" for k, v in cols.items()), soft_wrap=True)
    choice: dict[str, Any] = tr["choice"] if isinstance(tr.get("choice"), dict) else {}
    if choice.get("why"):
        console.print(f"chosen: {escape(str(choice['why']))}", soft_wrap=True)
    metrics = meta.get("metrics") or {}
    if metrics:
        t = Table(title="validation error")
        for col in ("output", "rmse", "max abs", "rel p50", "rel p90", "rel p99"):
            t.add_column(col)
        for name, m in metrics.items():
            m = m if isinstance(m, dict) else {}
            t.add_row(escape(str(name)), _num(m.get("rmse"), ".4g"), _num(m.get("max_abs"), ".4g"),
                      _num(m.get("rel_p50"), ".3%"), _num(m.get("rel_p90"), ".3%"), _num(m.get("rel_p99"), ".3%"))
        console.print(t)
    distribution = meta.get("distribution")
    if isinstance(distribution, dict):  # a generative model: judged on distributions, not per-answer errors
        print_distribution(distribution)
    elif not metrics:
        console.print(f"validation error: {NOT_RECORDED} (no captures were held out for this model)")
    gate = meta.get("gate")
    if isinstance(gate, dict):
        console.print(f"gate: {escape(_gate_text(gate))}" + (" (details: `phasm gate`)" if "report" in gate else ""),
                      soft_wrap=True)
    else:
        console.print("gate: none stored (the finite gate: every finite answer is trusted, unless the code gives gate=)")


def _gate_text(record: dict[str, Any]) -> str:
    """The stored gate in words (its ``describe()``), or its scalar fields when it cannot be read here."""
    from phasm.errors import PhasmError
    from phasm.gate import gate_from_json

    try:
        return str(gate_from_json(record).describe())
    except (PhasmError, ValueError, KeyError, TypeError):
        return json.dumps({k: v for k, v in record.items() if not isinstance(v, (list, dict))})


def print_distribution(record: dict[str, Any], max_rows: int = 40) -> None:
    """A generative model's held-out comparison: summary lines, then each observable's distances."""
    from phasm.train.distributions import DistributionReport

    try:
        report = DistributionReport.from_json(record)
    except (KeyError, TypeError, ValueError) as exc:
        console.print(f"distribution: unreadable record ({escape(type(exc).__name__)}: {escape(str(exc))})")
        return
    console.print("distribution (held-out captures vs generated samples):\n" + escape(report.summary()), soft_wrap=True)
    rows = list(report.observables.items())
    if rows:
        t = Table(title="observables: simulated vs generated")
        for col in ("observable", "KS distance", "mean rel. dev.", "width rel. dev."):
            t.add_column(col)
        for name, o in rows[:max_rows]:
            o = o if isinstance(o, dict) else {}
            t.add_row(escape(str(name)), _num(o.get("ks"), ".3f"), _num(o.get("mean_rel_dev"), ".2%"),
                      _num(o.get("std_rel_dev"), ".2%"))
        console.print(t)
        if len(rows) > max_rows:
            console.print(f"... and {len(rows) - max_rows} more observables (phasm.json, section 'distribution')")
