"""phasm.discover: which data a function reads and writes, by tracing and by static analysis.

>>> from phasm.discover import inspect_function, render_text   # doctest: +SKIP
>>> print(render_text(inspect_function(solve, [((f, u), {})])))  # doctest: +SKIP

Entry points: :func:`inspect_function` (both analyses, combined),
:func:`analyze_static`, :func:`trace_call`; renderers :func:`render_text`,
:func:`render_json`, :func:`proposed_code`, :func:`proposed_spec`.
"""

from phasm.discover.analyze import Finding, FlagFinding, Inspection, inspect_function
from phasm.discover.dynamic import DynamicResult, trace_call
from phasm.discover.report import proposed_code, proposed_declarations, proposed_spec, render_json, render_text
from phasm.discover.static import StaticResult, analyze_static

__all__ = [
    "DynamicResult", "Finding", "FlagFinding", "Inspection", "StaticResult", "analyze_static", "inspect_function",
    "proposed_code", "proposed_declarations", "proposed_spec", "render_json", "render_text", "trace_call",
]
