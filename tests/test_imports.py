"""The import graph of phasm has no cycle, counting imports inside functions too, and no module
imports a private name (``_x``) from another module.

Python resolves a function-level import at call time, so such a cycle never fails at import; it
still ties two modules into one unit that cannot be read, tested or replaced apart.  Imports of a
package from inside it (``phasm.store`` from ``phasm.store.reader``) are not edges: the package is
already being initialised.
"""

from __future__ import annotations

import ast
from pathlib import Path

import phasm

SRC = Path(phasm.__file__).parent

def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def resolve(importer: str, node: ast.ImportFrom) -> str | None:
    """The absolute module of ``from X import ...`` (relative imports included)."""
    if node.level == 0:
        return node.module
    base = importer.split(".")
    if not is_package(importer):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str) -> list[tuple[str, list[str], int]]:
    """``(module, imported names, line)`` for every import statement in the module, at any depth."""
    tree = ast.parse(MODULES[name].read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((alias.name, [], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            target = resolve(name, node)
            if target:
                found.append((target, [a.name for a in node.names], node.lineno))
    return found


def edges_of(name: str) -> set[str]:
    """phasm modules ``name`` imports (``from pkg import mod`` counts as importing ``pkg.mod``)."""
    out = set()
    for target, names, _ in imports_of(name):
        candidates = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES] or [target]
        for mod in candidates:
            while mod not in MODULES and "." in mod:  # `import phasm.x.y` as a name reference
                mod = mod.rsplit(".", 1)[0]
            if mod in MODULES and mod != name and not name.startswith(mod + "."):
                out.add(mod)
    return out


def strongly_connected(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Tarjan's algorithm: the components of more than one module (each a cycle or a knot of cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[tuple[str, ...]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(tuple(sorted(comp)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


GRAPH = {name: edges_of(name) for name in MODULES}


def test_the_graph_sees_function_level_imports() -> None:
    # phasm.surrogate imports the store writer lazily, inside a function: still an edge.
    assert "phasm.train.ragged" in GRAPH["phasm.gate.calibrate"]  # imported inside a function
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [("a", "b", "c")]


def test_no_import_cycle() -> None:
    cycles = strongly_connected(GRAPH)
    assert not cycles, "import cycles (module- or function-level):\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_private_name_imported_from_another_module() -> None:
    bad = []
    for name in MODULES:
        for target, names, line in imports_of(name):
            if not target.startswith("phasm") or target == name:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            private += [part for part in target.split(".") if part.startswith("_") and part != "__init__"]
            if private:
                bad.append(f"{MODULES[name].relative_to(SRC.parent)}:{line} imports {private} from {target}")
    assert not bad, "\n".join(bad)
