"""phasm.report: one self-contained HTML page about a surrogate, a profile and a cost model.

Structure (after pyinstrument): *collectors* read what each target provides into a data model
(:mod:`phasm.report.model`): model folders through the artefact API, capture stores through
:class:`~phasm.store.CaptureStore`, ``phasm profile`` folders through :mod:`phasm.profile`'s
session and renderer, ``phasm bench`` folders' ``cost.json``; *section renderers*
(:mod:`phasm.report.sections`, one module per section) turn it into HTML; :mod:`phasm.report.page`
assembles the page. Figures are matplotlib PNGs (Agg canvas) as data URIs; flame graphs inline SVG.

Example
-------
>>> from phasm.report import build_report, report_surrogate                      # doctest: +SKIP
>>> build_report(["models/heat", "captures/heat.h5", "phasm-profile", "phasm-bench"], "report.html")  # doctest: +SKIP
>>> report_surrogate(heat, "heat-report.html")        # what fn.report(path) calls   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "build_report": "phasm.report.build", "collect": "phasm.report.build", "classify": "phasm.report.build",
    "report_surrogate": "phasm.report.live", "render_page": "phasm.report.page", "ReportData": "phasm.report.model",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'phasm.report' has no attribute {name!r}")
