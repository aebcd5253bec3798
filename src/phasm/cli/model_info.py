"""``phasm info MODEL``: a model folder, verified first (manifest digest and every file), then described."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from phasm.cli.common import console, print_spec


def _num(value: Any, fmt: str) -> str:
    """``value`` formatted as a number, or as text if the record holds something else."""
    return format(value, fmt) if isinstance(value, (int, float)) and not isinstance(value, bool) else escape(str(value))


def print_model_info(path: Path) -> None:
    """Print a verified model folder: spec, backend, digest, training record, validation error, gate."""
    from phasm.train.artefact import ModelArtefact, spec_from_metadata

    meta = ModelArtefact.read_metadata(path)
    print_spec(spec_from_metadata(meta, path))
    b = meta["backend"]
    console.print(f"model: backend [bold]{escape(b['name'])}[/] {escape(str(b.get('version', '')))}, created "
                  f"{escape(str(meta.get('created')))}, phasm {escape(str(meta.get('phasm_version')))}")
    console.print(f"verified: manifest digest {meta['manifest']['digest']} over {escape(str(path / 'phasm.json'))} and "
                  f"{len(meta['files'])} weights file(s) (pin it with ModelArtefact.load(..., expect_digest=...))",
                  soft_wrap=True)
    console.print(f"parameters: {escape(json.dumps(b.get('params', {})))}", soft_wrap=True)
    tr = meta.get("training") or {}
    if tr:
        console.print(f"trained on {escape(str(tr.get('n_train')))} rows ({escape(str(tr.get('n_val')))} validation), "
                      f"{escape(str(tr.get('epochs')))} epochs, {_num(tr.get('seconds', 0), '.2f')} s on "
                      f"{escape(str(tr.get('device')))}")
    transforms = {n: t for n, t in (meta.get("transforms") or {}).items()
                  if isinstance(t, dict) and t.get("kind") not in (None, "standardise")}
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
    gate = meta.get("gate")
    if isinstance(gate, dict):
        console.print(f"gate: {escape(json.dumps({k: v for k, v in gate.items() if not isinstance(v, (list, dict))}))}"
                      + (" (details: `phasm gate`)" if "report" in gate else ""), soft_wrap=True)
