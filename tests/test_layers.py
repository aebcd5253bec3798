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


def test_no_upward_imports():
    violations = []
    for layer in LAYERS:
        for path in (SRC / layer).rglob("*.py"):
            for mod in imports_of(path):
                target = layer_of(mod)
                if target and LAYERS.index(target) < LAYERS.index(layer):
                    violations.append(f"{path.relative_to(SRC)} ({layer}) imports {mod} ({target})")
    assert not violations, "\n".join(violations)
