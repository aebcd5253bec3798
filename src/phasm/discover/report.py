"""Renderers for an :class:`~phasm.discover.inspection.Inspection`: text report, spec code, JSON.

:func:`proposed_code` prints a ``@phasm.surrogate(inputs=..., outputs=...)``
decorator ready to paste: ``phasm.Scalar`` / ``phasm.Array`` for arguments
and return values, and the optics helpers for data elsewhere
(``phasm.attr("track.momentum.x")``, ``phasm.each("hits", fields=[...])``,
``phasm.glob("module.NAME")``).  The declarations are built as objects first
(:func:`~phasm.discover.proposal.propose`); the code is printed from them
(:mod:`phasm.discover.printer`), and :func:`proposed_declarations` /
:func:`proposed_spec` hand the same objects over, nothing is evaluated.

Example
-------
>>> import numpy as np
>>> from phasm.discover.analyze import inspect_function
>>> def double(x):
...     return 2 * x
>>> print(proposed_code(inspect_function(double, [((np.ones(3),), {})])))
@phasm.surrogate(
    inputs={
        "x": phasm.Array((3,)),
    },
    outputs={
        "result": phasm.Array((3,)),
    },
)
"""

from __future__ import annotations

import json

from phasm.bindings import Spec, Variable
from phasm.discover.inspection import Inspection
from phasm.discover.printer import declaration_code
from phasm.discover.proposal import Proposal, propose, shape_text
from phasm.errors import PhasmError


def _code(proposal: Proposal, ins: Inspection) -> str:
    lines = []
    if "nondeterministic" in ins.flags:
        lines.append("# WARNING: nondeterministic (two runs on the same input differ): a regression surrogate")
        lines.append("# cannot reproduce it; consider a generative one.")
    for f in ins.flag_details:
        if f.flag not in ("nondeterministic", "raises"):
            lines.append(f"# WARNING: {f.flag}: {f.what} at {f.where}; a model will not do this")
    lines.extend(f"# {c}" for c in proposal.comments)
    lines.append("@phasm.surrogate(")
    for section in ("inputs", "outputs"):
        lines.append(f"    {section}={{")
        for d in getattr(proposal, section):
            hash_ = "" if d.enabled else "# "
            comment = f"  # {d.comment}" if d.comment else ""
            lines.append(f'        {hash_}"{d.name}": {declaration_code(d.variable, section)},{comment}')
        lines.append("    },")
    if proposal.batched:
        lines.append("    batched=True,")
    lines.append(")")
    return "\n".join(lines)


def proposed_code(ins: Inspection) -> str:
    """The proposed ``@phasm.surrogate(...)`` decorator, as code to paste."""
    return _code(propose(ins), ins)


def proposed_declarations(ins: Inspection) -> tuple[dict[str, Variable], dict[str, Variable]]:
    """The proposal as objects: ``(inputs, outputs)`` dicts to pass to ``phasm.surrogate``.

    Module constants that the proposal offers commented out are left out.
    """
    return propose(ins).declarations()


def proposed_spec(ins: Inspection) -> Spec | None:
    """The proposal as a :class:`~phasm.bindings.spec.Spec`, or ``None`` if it is not complete as it stands."""
    try:
        return propose(ins).spec()
    except PhasmError:  # no outputs (or no inputs) could be proposed: declare them by hand
        return None


def render_text(ins: Inspection) -> str:
    """A readable plain-text report."""
    out = [f"interface of {ins.function}  ({ins.examples} example call(s), "
           f"{ins.seconds * 1e3:.3g} ms traced per call)"]
    if ins.calls:
        out.append("follows calls into: " + ", ".join(ins.calls))
    rows = [("kind", "path", "shape", "dtype", "seen by", "notes")]
    for f in ins.variables:
        where = sorted(set(f.where))
        where_text = " ".join(where[:3]) + (f" (+{len(where) - 3} more)" if len(where) > 3 else "")
        rows.append((f.kind, f.name, shape_text(f.shape) if f.dtype else (f.type_name or "?"), f.dtype or "-",
                     f.source, "; ".join(f.notes + ([where_text] if where else []))))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        out.append("  " + "  ".join(r[i].ljust(widths[i]) for i in range(5)) + "  " + r[5])
    out.append("flags: " + (", ".join(ins.flags) if ins.flags else "none (looks safe to replace)"))
    for detail in ins.flag_details:
        out.append(f"  {detail.flag}: {detail.what} at {detail.where} [{detail.source}]")
    for s in ins.suggestions:
        out.append(f"suggestion: {s}")
    if ins.disagreements:
        out.append("static and dynamic analysis disagree:")
        out.extend(f"  {d}" if len(d) < 240 else f"  {d[:237]}..." for d in ins.disagreements)
    if ins.notes:
        out.append("notes:")
        out.extend(f"  {n}" for n in ins.notes)
    out.append("")
    out.append("proposed spec:")
    out.append(proposed_code(ins))
    return "\n".join(out)


def render_json(ins: Inspection, indent: int | None = 2) -> str:
    """The inspection as JSON: ``{"variables": [...], "flags": [...], ...}``."""
    return json.dumps({**ins.to_json(), "proposed_spec": proposed_code(ins)}, indent=indent, default=str)
