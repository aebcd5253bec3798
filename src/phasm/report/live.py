"""``fn.report(path)``: the report of a live surrogate, with the counters of this process.

The surrogate is read through its public attributes (``spec``, ``model``, ``gate``,
``tolerance``, ``stats``, ``capture_store()``), so this module does not import the surrogate
layer below it.

Example
-------
>>> report_surrogate(price, "price-report.html")   # doctest: +SKIP
PosixPath('price-report.html')
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from phasm import __version__
from phasm.errors import ArtefactError, ReportError, StoreError
from phasm.report.build import write_page
from phasm.report.collect_surrogate import ModelInfo, collect_surrogate
from phasm.report.model import ReportData
from phasm.report.page import render_page
from phasm.train.artefact import ModelArtefact

NEEDED = ("name", "spec", "model", "gate", "tolerance", "stats", "store_path", "capture_store")


def report_surrogate(fn: Any, path: str | os.PathLike[str], *, title: str | None = None, max_rows: int = 20000) -> Path:
    """Write the HTML report of surrogate ``fn`` (its model, store, gate and live counters) to ``path``."""
    missing = [a for a in NEEDED if not hasattr(fn, a)]
    if missing:
        raise ReportError(f"report_surrogate: fn must be a phasm.Surrogate (a function wrapped by @phasm.surrogate), "
                          f"got {type(fn).__name__}")
    store = None
    notes = []
    if fn.store_path is not None:
        try:
            store = fn.capture_store()
        except (StoreError, OSError) as exc:
            notes.append(f"the capture store {fn.store_path} could not be read: {exc}")
    if fn.model is None and store is None:
        raise ReportError(f"{fn.name}: nothing to report yet: no model attached and no captured rows")
    info = ModelInfo.from_artefact(fn.model, _metadata(fn.model)) if fn.model is not None else None
    s = collect_surrogate(info, store, gate=fn.gate if fn.model is not None else None, tolerance=fn.tolerance,
                          counters=fn.stats.as_dict(), name=fn.name, max_rows=max_rows)
    s.notes += notes
    data = ReportData(title=title or f"phasm report: {fn.name}", created=time.strftime("%Y-%m-%d %H:%M:%S %z"),
                      phasm_version=__version__, surrogates=[s],
                      targets=[(str(p), k) for p, k in ((s.model_path, "model"), (s.store_path, "store")) if p] +
                      [(fn.name, "live surrogate (this process)")])
    return write_page(render_page(data), path)


def _metadata(art: Any) -> dict[str, Any]:
    """The saved record of a model loaded from (or saved to) a folder; a model trained here: this phasm."""
    if art.path is not None:
        try:
            return ModelArtefact.read_metadata(art.path)
        except (ArtefactError, OSError):
            pass
    return {"phasm_version": __version__}
