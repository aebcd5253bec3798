"""Surrogate: the spec table (variables, directions, shapes, dtypes, where each lives in a call)."""

from __future__ import annotations

import json

from phasm.report.html import Html, join, key_values, table
from phasm.report.model import SurrogateData
from phasm.report.sample import describe_shape

PART = "surrogate"
ID = "spec"
TITLE = "Spec"


def render(s: SurrogateData) -> Html | None:
    extra_keys = sorted({k for v in s.variables for k in v.extra})
    rows = []
    for v in s.variables:
        kind = "variable length, elements " + describe_shape(v.shape) if v.ragged else describe_shape(v.shape)
        rows.append([v.name, v.direction, kind, v.dtype, v.binding]
                    + [json.dumps(v.extra[k], sort_keys=True, default=str) if k in v.extra else "-" for k in extra_keys])
    n_in = sum(1 for v in s.variables if v.direction in ("in", "inout"))
    n_out = sum(1 for v in s.variables if v.direction in ("out", "inout"))
    about = key_values([("function", s.function), ("spec hash", s.spec_hash), ("batched", s.batched),
                        ("inputs / outputs", f"{n_in} / {n_out} variables"),
                        ("model folder", s.model_path or "-"), ("capture store", s.store_path or "-")])
    headers = ["variable", "direction", "shape", "dtype", "binding (where the call holds it)"]
    headers += ["transforms and metadata" if k == "meta" else k for k in extra_keys]
    return join([about, table(headers, rows, caption="Variables; an inout variable is read before the call and "
                                                    "written back after it")])
