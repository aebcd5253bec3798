"""The one place where per-variable transforms of a model enter the generated code.

Today a phasm model maps its inputs as the caller gives them: each raw value is rounded to float32
(as ``phasm`` packs model rows), standardised, and the answer un-standardised.  Artefacts will later
carry per-variable transforms (``log`` of a positive input, say) applied before standardisation
and inverted after; when they do, :func:`variable_transforms` reads them from the artefact and the
generators emit them in two functions of the generated header, ``<prefix>_impl_inputs`` (raw
``double`` row -> model ``float`` row) and ``<prefix>_impl_outputs`` (model answer -> caller's
units), which every model and gate path goes through.  Until then an artefact that declares
transforms is refused rather than exported without them.

Example
-------
>>> variable_transforms(type("A", (), {"sections": {}})()).inputs
()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from phasm.errors import ExportError


@dataclass(frozen=True)
class VariableTransforms:
    """Per-feature transforms: ``inputs[i]`` / ``outputs[j]`` name the transform of a feature
    (``"identity"`` when absent).  Empty tuples: none (every feature as given)."""

    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()

    @property
    def identity(self) -> bool:
        return all(t == "identity" for t in (*self.inputs, *self.outputs))


def variable_transforms(art: Any) -> VariableTransforms:
    """The transforms a model artefact applies per variable (none today); refuse unknown ones."""
    sections = getattr(art, "sections", {}) or {}
    declared = sections.get("transforms")
    if declared:
        raise ExportError("not exportable: the model declares per-variable transforms "
                          f"({sorted(declared) if isinstance(declared, dict) else declared!r}), "
                          "which this exporter does not generate yet")
    return VariableTransforms()
