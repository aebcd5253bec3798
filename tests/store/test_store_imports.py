"""The store package has no import cycle (module- or function-level) and imports no private name."""

from __future__ import annotations

import ast
from pathlib import Path

import phasm.store

STORE = Path(phasm.store.__file__).parent


def store_imports() -> dict[str, set[tuple[str, str | None]]]:
    """``{module: {(imported module, imported name or None)}}`` for every module of phasm.store."""
    graph: dict[str, set[tuple[str, str | None]]] = {}
    for path in STORE.glob("*.py"):
        mod = "phasm.store" if path.stem == "__init__" else f"phasm.store.{path.stem}"
        found: set[tuple[str, str | None]] = set()
        for node in ast.walk(ast.parse(path.read_text())):  # every level: module and function bodies
            if isinstance(node, ast.Import):
                found.update((a.name, None) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.update((node.module, a.name) for a in node.names)
        graph[mod] = found
    return graph


def test_no_import_cycle_in_the_store():
    edges = {m: {t for t, _ in targets if t.startswith("phasm.store.") and t != m} for m, targets in store_imports().items()}
    state: dict[str, int] = {}

    def visit(m, trail):
        if state.get(m) == 1:
            raise AssertionError(f"import cycle: {' -> '.join(trail + [m])}")
        if state.get(m) == 2:
            return
        state[m] = 1
        for t in sorted(edges.get(m, ())):
            visit(t, trail + [m])
        state[m] = 2

    for m in edges:
        visit(m, [])


def test_no_private_name_imported_across_modules():
    bad = [f"{m} imports {name} from {t}" for m, targets in store_imports().items()
           for t, name in targets
           if name and name.startswith("_") and not name.startswith("__") and t.startswith("phasm")]
    assert not bad, bad


def test_the_fast_crc_is_zlibs_crc32():
    """Files never depend on which CRC-32 implementation wrote them (zlib-ng's when installed)."""
    import zlib

    import numpy as np

    from phasm.store.layout import crc, crc32_function

    data = np.random.default_rng(0).integers(0, 2**63, 100_003, dtype=np.int64)
    for start in (0, 12345, 2**32 - 1):
        assert crc(data, start) == zlib.crc32(data.tobytes(), start)
        assert crc32_function()(data.tobytes(), start) == zlib.crc32(data.tobytes(), start)
    assert crc(np.arange(3, dtype=">f8")) == zlib.crc32(np.arange(3, dtype="<f8").tobytes())  # little-endian bytes
