"""``phasm report TARGET...``: recognise each target, collect what it provides, write the page.

A target is a model folder (``phasm.json``), a capture store (an HDF5 file), a ``phasm profile
--out`` folder (``session.json`` + ``candidates.json``) or a ``phasm bench --out`` folder
(``cost.json``). A model and a store with the same spec are one surrogate.

Example
-------
>>> build_report(["models/price", "captures/price.h5", "phasm-profile"], "report.html")   # doctest: +SKIP
PosixPath('report.html')
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Sequence

from phasm import __version__
from phasm.errors import ReportError, StoreError
from phasm.report.collect_profile import collect_cost, collect_profile
from phasm.report.collect_surrogate import ModelInfo, collect_surrogate
from phasm.report.model import ReportData
from phasm.report.page import render_page
from phasm.store.reader import CaptureStore

KINDS = ("model", "store", "profile", "bench")


def classify(path: str | os.PathLike[str]) -> str:
    """What a target is: ``model``, ``store``, ``profile`` or ``bench``; anything else is a one-line error."""
    p = Path(path)
    if not p.exists():
        raise ReportError(f"report target {p}: no such file or folder")
    if p.is_dir():
        if (p / "phasm.json").is_file():
            return "model"
        if (p / "session.json").is_file() and (p / "candidates.json").is_file():
            return "profile"
        if (p / "cost.json").is_file():
            return "bench"
        raise ReportError(f"report target {p}: a folder that is none of a model folder (phasm.json), a profile output "
                          "(session.json and candidates.json) or a bench output (cost.json)")
    if p.name.endswith(".json"):
        raise ReportError(f"report target {p}: give the folder that holds it, not the file")
    return "store"


def open_store(path: Path) -> CaptureStore:
    try:
        store = CaptureStore(path)
    except (StoreError, OSError) as exc:
        raise ReportError(f"report target {path}: not a readable phasm capture store ({exc})") from None
    if store.spec is None:
        raise ReportError(f"report target {path}: the capture store holds no spec")
    return store


def collect(targets: Sequence[str | os.PathLike[str]], *, title: str | None = None, max_rows: int = 20000) -> ReportData:
    """Read every target and pair models with stores; nothing is drawn yet."""
    if not targets:
        raise ReportError("phasm report needs at least one target: a model folder, a capture store, "
                          "a profile folder or a bench folder")
    if max_rows < 100:
        raise ReportError(f"max_rows must be at least 100, got {max_rows}")
    kinds = [(Path(t), classify(t)) for t in targets]
    models = [ModelInfo.load(p) for p, k in kinds if k == "model"]
    stores = [open_store(p) for p, k in kinds if k == "store"]
    profiles = [collect_profile(p) for p, k in kinds if k == "profile"]
    data = ReportData(title=title or "phasm report", created=time.strftime("%Y-%m-%d %H:%M:%S %z"),
                      phasm_version=__version__, targets=[(str(p), k) for p, k in kinds], profiles=profiles)
    unpaired = list(stores)
    for info in models:
        match = next((s for s in unpaired if s.spec is not None and s.spec.hash == info.spec.hash), None)
        if match is not None:
            unpaired.remove(match)
        data.surrogates.append(collect_surrogate(info, match, max_rows=max_rows))
    for store in unpaired:
        data.surrogates.append(collect_surrogate(None, store, max_rows=max_rows))
    data.costs = [collect_cost(p, profiles) for p, k in kinds if k == "bench"]
    if title is None and data.surrogates:
        data.title = f"phasm report: {', '.join(s.name for s in data.surrogates)}"
    return data


def write_page(html: str, out: str | os.PathLike[str]) -> Path:
    """Write atomically: a reader never sees half a report."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(html)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def build_report(targets: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *, title: str | None = None,
                 max_rows: int = 20000) -> Path:
    """Write one self-contained HTML report over ``targets`` to ``out``; returns its path.

    ``max_rows``: rows of each store read for plots (evenly spaced runs when it holds more);
    statistics always cover every row.
    """
    return write_page(render_page(collect(targets, title=title, max_rows=max_rows)), out)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
