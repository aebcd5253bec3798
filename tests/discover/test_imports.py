"""phasm.discover has no import cycle (module- or function-level) and uses no other module's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import phasm

PACKAGE = "phasm.discover"
SRC = Path(phasm.__file__).parent / "discover"


def _modules() -> dict[str, ast.Module]:
    return {f"{PACKAGE}.{p.stem}" if p.stem != "__init__" else PACKAGE: ast.parse(p.read_text())
            for p in sorted(SRC.glob("*.py"))}


def _imported(tree: ast.Module, modules: set[str]) -> dict[str, str]:
    """``{local name: module}`` for every import of a module of the package, at any level of the file."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in modules:
                    out[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                if sub in modules:  # `from phasm.discover import recorder`: the submodule
                    out[a.asname or a.name] = sub
                elif node.module in modules:
                    out[f"{a.asname or a.name}@{node.module}"] = node.module
    return out


def test_no_import_cycle():
    trees = _modules()
    names = set(trees)
    graph = {m: {t for t in _imported(tree, names).values() if t != m and t != PACKAGE}
             for m, tree in trees.items() if m != PACKAGE}
    cycles = []

    def visit(node, stack):
        for nxt in graph.get(node, ()):
            if nxt in stack:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif len(stack) < len(graph):
                visit(nxt, stack + [nxt])

    for m in graph:
        visit(m, [m])
    assert not cycles, "\n".join(sorted(set(cycles)))


def test_no_private_name_from_another_module():
    trees = _modules()
    names = set(trees)
    found = []
    for m, tree in trees.items():
        modules = {local: mod for local, mod in _imported(tree, names).items() if "@" not in local}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("phasm"):
                found += [f"{m}: from {node.module} import {a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in modules and node.attr.startswith("_") and not node.attr.startswith("__"):
                found.append(f"{m}: {node.value.id}.{node.attr}")
    assert not found, "\n".join(found)
