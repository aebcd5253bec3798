"""The result of interface discovery: findings per data path, flags, and the whole inspection.

:class:`Inspection` is what :func:`~phasm.discover.analyze.inspect_function`
returns and what the renderers of :mod:`phasm.discover.report` print.  Each
:class:`Finding` is one data path with its kind (``in``, ``out``, ``inout``,
``unused``, ``scratch``); each :class:`FlagFinding` one reason the function
may be unsafe to replace.

Example
-------
>>> f = Finding((("arg", "u"),), "inout", (4,), "float64")
>>> f.name, f.to_json()["shape"]
('u', [4])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from phasm.discover.paths import Path, render


@dataclass
class Finding:
    """One data path of the function's interface, classified."""

    path: Path
    kind: str  # in / out / inout / unused / scratch
    shape: tuple | None = None  # per call; None entries are variable lengths
    dtype: str | None = None
    ragged: bool = False
    type_name: str | None = None
    source: str = "dynamic"  # dynamic / static / both
    where: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    passed: bool = True  # arguments: given in the example (False: a default value)
    extension: str | None = None  # an object of a compiled extension type (its name): not traced inside

    @property
    def name(self) -> str:
        return render(self.path)

    @property
    def numeric(self) -> bool:
        return self.dtype is not None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.name, "kind": self.kind,
                             "shape": list(self.shape) if self.shape is not None else None,
                             "dtype": self.dtype, "source": self.source}
        if self.ragged:
            d["ragged"] = True
        if self.type_name and self.dtype is None:
            d["type"] = self.type_name
        if self.where:
            d["where"] = sorted(self.where)
        if self.notes:
            d["notes"] = list(self.notes)
        if not self.passed:
            d["default"] = True
        if self.extension:
            d["extension_type"] = self.extension
        return d


@dataclass
class FlagFinding:
    """A reason the function may be unsafe to replace."""

    flag: str
    what: str
    where: str
    source: str

    def to_json(self) -> dict[str, Any]:
        return {"flag": self.flag, "what": self.what, "where": self.where, "source": self.source}


@dataclass
class Inspection:
    """The discovered interface of one function (see :mod:`phasm.discover.report` to print it)."""

    function: str
    params: list[str]
    variables: list[Finding]
    flag_details: list[FlagFinding]
    disagreements: list[str]
    notes: list[str]
    examples: int
    seconds: float
    errors: list[str]
    calls: list[str]
    methods: dict[str, list[str]] = field(default_factory=dict)  # object path -> methods used on it
    classes: dict[str, str] = field(default_factory=dict)  # output object path -> its class name
    module: str = ""  # the function's module (names in the proposed code resolve there)
    batched: bool = False  # arguments and results carry a leading batch axis (phasm.surrogate(batched=True))
    fields: dict[str, list[str]] = field(default_factory=dict)  # object path -> field names, declaration order
    class_refs: dict[str, type] = field(default_factory=dict)  # output object path -> its class (seen in the call)
    suggestions: list[str] = field(default_factory=list)  # advice beyond the flags (e.g. stochastic=True)

    @property
    def flags(self) -> list[str]:
        return sorted({f.flag for f in self.flag_details})

    def by_name(self, name: str) -> Finding:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(f"no path {name!r}; found {[v.name for v in self.variables]}")

    def kinds(self) -> dict[str, str]:
        """``{path: kind}`` for every finding."""
        return {v.name: v.kind for v in self.variables}

    def to_json(self) -> dict[str, Any]:
        """The inspection as JSON-ready data (:func:`~phasm.discover.report.render_json` adds the proposed spec)."""
        return {
            "function": self.function,
            "variables": [v.to_json() for v in self.variables],
            "flags": self.flags,
            "flag_details": [f.to_json() for f in self.flag_details],
            "disagreements": list(self.disagreements),
            "notes": list(self.notes),
            "calls": list(self.calls),
            "methods": dict(self.methods),
            "classes": dict(self.classes),
            "examples": self.examples,
            "batched": self.batched,
            "seconds_per_call": self.seconds,
            "errors": list(self.errors),
            "suggestions": list(self.suggestions),
        }
