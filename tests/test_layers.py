"""The layering of DESIGN.md holds: a lower layer never imports a higher one."""

from __future__ import annotations

import ast
from pathlib import Path

import phasm

# Top to bottom, as in DESIGN.md.
LAYERS = ["cli", "report", "export", "profile", "discover", "sampling", "surrogate", "gate", "train", "backends", "store", "bindings"]
SRC = Path(phasm.__file__).parent


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "phasm" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS else None


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


# Upward calls made at call time through a function-level import, each named: fn.report(path) hands the
# surrogate to the report layer (which reads it through public attributes and never imports phasm.surrogate).
CALL_TIME_UPWARD = {("surrogate/wrapper.py", "phasm.report.live")}


def test_no_upward_imports():
    violations = []
    for layer in LAYERS:
        for path in (SRC / layer).rglob("*.py"):
            for mod in imports_of(path):
                target = layer_of(mod)
                if (str(path.relative_to(SRC)), mod) in CALL_TIME_UPWARD:
                    continue
                if target and LAYERS.index(target) < LAYERS.index(layer):
                    violations.append(f"{path.relative_to(SRC)} ({layer}) imports {mod} ({target})")
    assert not violations, "\n".join(violations)


def test_report_layer_never_imports_the_surrogate_layer():
    """What keeps fn.report(path) from being an import cycle: the report layer reads a surrogate's attributes."""
    found = [f"{path.relative_to(SRC)} imports {mod}" for path in (SRC / "report").rglob("*.py")
             for mod in imports_of(path) if layer_of(mod) == "surrogate" or mod.startswith("phasm.profile.costmodel")]
    assert not found, "\n".join(found)
