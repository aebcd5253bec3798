"""phasm.discover: which data a function reads and writes, by tracing and by static analysis.

>>> from phasm.discover import inspect_function, render_text   # doctest: +SKIP
>>> print(render_text(inspect_function(solve, [((f, u), {})])))  # doctest: +SKIP

Entry points: :func:`inspect_function` (both analyses, combined),
:func:`analyze_static`, :func:`trace_call`; the proposal as objects
:func:`propose` (a :class:`Proposal` of :class:`Declaration` s), and the
renderers :func:`render_text`, :func:`render_json`, :func:`proposed_code`,
:func:`proposed_declarations`, :func:`proposed_spec`.
"""

from phasm.discover.analyze import inspect_function
from phasm.discover.dynamic import DynamicResult, trace_call
from phasm.discover.inspection import Finding, FlagFinding, Inspection
from phasm.discover.opaque import extension_type, observable_state
from phasm.discover.proposal import Declaration, Proposal, propose
from phasm.discover.report import proposed_code, proposed_declarations, proposed_spec, render_json, render_text
from phasm.discover.static import StaticResult, analyze_static

__all__ = [
    "Declaration", "DynamicResult", "Finding", "FlagFinding", "Inspection", "Proposal", "StaticResult",
    "analyze_static", "extension_type", "inspect_function", "observable_state", "propose", "proposed_code",
    "proposed_declarations", "proposed_spec", "render_json", "render_text", "trace_call",
]
