"""The one place where per-variable transforms of a model, and the input columns it reads, enter the
generated code.

A phasm model may learn a variable on another scale (``log`` of a positive quantity, ``asinh``,
``logit``: :mod:`phasm.train.transforms`) and may not read input columns that were constant, or
duplicates of another, in the captures (:mod:`phasm.train.columns`).  Python applies both around the
backend, inside the model: the trust gate judges the caller's row as given.  The generated code does
the same: :func:`variable_transforms` reads them from the artefact (names from the fixed table,
numbers checked), and :meth:`VariableTransforms.code` emits

* ``<prefix>_impl_tx(x, t)``: the caller's float32 row ``x`` -> the row the standardisation takes
  (each transformed value computed in double and rounded to float, as numpy computes it); returns 0
  when a value has no transform (the log of a value <= 0) or a dropped constant or duplicate column
  differs from its captured value: the model's answer is then NaN, as in Python;
* ``<prefix>_impl_ty(y)``: the inverse transforms of the outputs, in place;

which the model's functions call (``<prefix>_impl_model``, ``<prefix>_impl_members``).  The exponential,
logarithm and hyperbolic functions are ``<math.h>``'s.

Example
-------
>>> import numpy as np, phasm
>>> from phasm.train import fit_model
>>> spec = phasm.Spec.from_declarations("m.f", {"P": phasm.Scalar()}, {"k": phasm.Scalar()})
>>> P = np.geomspace(1, 1e4, 60)[:, None]
>>> art, _ = fit_model((P, 1 / P), spec, backend="ridge", degree=1)
>>> vt = variable_transforms(art)
>>> vt.inputs, vt.outputs, vt.identity
(('log',), ('log',), False)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from phasm.errors import ExportError
from phasm.export.cformat import c_double, c_float

__all__ = ["VariableTransforms", "variable_transforms"]

KNOWN = ("standardise", "none", "log", "asinh", "logit")


@dataclass(frozen=True)
class VariableTransforms:
    """Per-feature transforms: ``inputs[i]`` / ``outputs[j]`` name the transform of a feature
    (``"standardise"`` when absent), ``in_params`` / ``out_params`` their ``(scale, low, high)``;
    ``constant`` ``{column: value}`` and ``duplicate`` ``{column: twin}``: input columns the model does not
    read (checked, as Python checks them).  Empty: none (every feature as given)."""

    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    in_params: tuple[tuple[float, float, float], ...] = ()
    out_params: tuple[tuple[float, float, float], ...] = ()
    constant: dict[int, float] = field(default_factory=dict)
    duplicate: dict[int, int] = field(default_factory=dict)

    @property
    def identity(self) -> bool:
        """No transform and every input column read: the model functions need no extra step."""
        return (all(t in ("standardise", "none") for t in (*self.inputs, *self.outputs))
                and not self.constant and not self.duplicate)

    @property
    def inputs_identity(self) -> bool:
        return all(t in ("standardise", "none") for t in self.inputs) and not self.constant and not self.duplicate

    @property
    def outputs_identity(self) -> bool:
        return all(t in ("standardise", "none") for t in self.outputs)

    def code(self, p: str) -> str:
        """C functions ``<p>_impl_tx`` and ``<p>_impl_ty`` (see the module docstring); empty when :attr:`identity`."""
        if self.identity:
            return ""
        n_in, n_out = len(self.inputs), len(self.outputs)
        lines = [f"/* NaN, from its bits (well defined under -ffast-math too) */\n"
                 f"static inline float {p}_impl_nan(void)\n{{\n"
                 f"    const uint32_t bits = 0x7fc00000u;\n    float v;\n    memcpy(&v, &bits, sizeof v);\n"
                 f"    return v;\n}}\n\n",
                 f"/* The caller's float32 row -> the row the model standardises: per-variable transforms, in double\n"
                 f"   rounded to float as phasm computes them; 0 when a value has no transform or an input the model\n"
                 f"   does not read differs from the captures (the answer is then NaN, as in phasm). */\n"
                 f"static inline int {p}_impl_tx(const float *x, float *t)\n{{\n"
                 f"    int ok = 1;\n    double v;\n    (void)v;\n"]
        for i, (kind, (scale, low, high)) in enumerate(zip(self.inputs, self.in_params)):
            lines.append(_forward_line(i, kind, scale, low, high))
        for col, value in sorted(self.constant.items()):
            lines.append(f"    ok &= x[{col}] == {c_float(value, 'constant input')};  /* constant in the captures */\n")
        for col, twin in sorted(self.duplicate.items()):
            lines.append(f"    ok &= x[{col}] == x[{twin}];  /* equal to column {twin} in the captures */\n")
        lines.append("    return ok;\n}\n\n")
        lines.append(f"/* The model's answer on its scale -> the caller's units, in place (inverse transforms). */\n"
                     f"static inline void {p}_impl_ty(float *y)\n{{\n")
        body = [_inverse_line(j, kind, scale, low, high)
                for j, (kind, (scale, low, high)) in enumerate(zip(self.outputs, self.out_params))]
        body = [b for b in body if b]
        lines.append("".join(body) if body else "    (void)y;\n")
        lines.append("}\n\n")
        del n_in, n_out
        return "".join(lines)


def _forward_line(i: int, kind: str, scale: float, low: float, high: float) -> str:
    if kind in ("standardise", "none"):
        return f"    t[{i}] = x[{i}];\n"
    if kind == "log":
        return (f"    v = (double)x[{i}];  /* log */\n"
                f"    ok &= v > 0.0;\n    t[{i}] = (float)log(v > 0.0 ? v : 1.0);\n")
    if kind == "asinh":
        return f"    t[{i}] = (float)asinh((double)x[{i}] / {c_double(scale)});  /* asinh(x / scale) */\n"
    width = high - low
    return (f"    v = ((double)x[{i}] - {c_double(low)}) / {c_double(width)};  /* logit on ({low:.9g}, {high:.9g}) */\n"
            f"    ok &= v > 0.0 && v < 1.0;\n"
            f"    t[{i}] = (v > 0.0 && v < 1.0) ? (float)(log(v) - log1p(-v)) : 0.0f;\n")


def _inverse_line(j: int, kind: str, scale: float, low: float, high: float) -> str:
    if kind in ("standardise", "none"):
        return ""
    if kind == "log":
        return f"    y[{j}] = (float)exp((double)y[{j}]);\n"
    if kind == "asinh":
        return f"    y[{j}] = (float)(sinh((double)y[{j}]) * {c_double(scale)});\n"
    return f"    y[{j}] = (float)({c_double(low)} + {c_double(high - low)} / (1.0 + exp(-(double)y[{j}])));\n"


def variable_transforms(art: Any) -> VariableTransforms:
    """The transforms a model artefact applies per feature and the input columns it reads; refuse unknown ones."""
    spec = art.spec
    records = getattr(art, "transforms", None) or {}
    ins: list[str] = []
    in_params: list[tuple[float, float, float]] = []
    outs: list[str] = []
    out_params: list[tuple[float, float, float]] = []
    for variables, kinds, params in ((spec.inputs, ins, in_params), (spec.outputs, outs, out_params)):
        for v in variables:
            t = records.get(str(v.name))
            kind = "standardise" if t is None else str(t.kind)
            if kind not in KNOWN:
                raise ExportError(f"not exportable: variable {v.name!r} has transform {kind!r}, which the exporter "
                                  f"does not generate (known: {', '.join(KNOWN)})")
            numbers = (1.0, 0.0, 1.0) if t is None else (float(t.scale), float(t.low), float(t.high))
            if not all(np.isfinite(numbers)):
                raise ExportError(f"not exportable: variable {v.name!r}: transform parameters {numbers} are not finite")
            kinds.extend([kind] * v.size)
            params.extend([numbers] * v.size)
    columns = getattr(art, "columns", None)
    constant = dict(columns.constant) if columns is not None else {}
    duplicate = dict(columns.duplicate) if columns is not None else {}
    return VariableTransforms(tuple(ins), tuple(outs), tuple(in_params), tuple(out_params), constant, duplicate)
