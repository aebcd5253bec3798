"""Stores with known rows, for the damage, crash and fuzz tests (helpers; fixtures in conftest.py).

Every row carries a unique id (input ``i``) and values derived from it, so a
test can tell a right row from a wrong one however rows are dropped or
reordered: :func:`check_rows` fails on any row that was not written.
"""

from __future__ import annotations

import numpy as np
from phasm.bindings.spec import Array, Scalar, Spec
from phasm.store import CaptureWriter


def known_spec() -> Spec:
    return Spec.from_declarations(
        "tests.known",
        {"i": Scalar("int64"), "v": Array((3,), "float32")},
        {"y": Scalar("float64"), "k": Scalar("int64")},
    )


def known_rows(ids: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    ids = np.asarray(ids, np.int64)
    v = np.stack([ids * 0.5, -ids * 1.0, np.full(len(ids), 1.0)], axis=1).astype(np.float32)
    return [ids, v], [ids * 2.0 + 1.0, (-1) ** ids]  # k alternates -1, +1: real data that sums to zero


def write_known(path, n: int, *, flush_rows: int = 100, first: int = 1) -> None:
    with CaptureWriter(path, known_spec(), flush_rows=flush_rows) as w:
        ins, outs = known_rows(np.arange(first, first + n))
        for r in range(n):
            w.append_row([ins[0][r], ins[1][r]], [outs[0][r], outs[1][r]])


def check_rows(ins: dict, outs: dict) -> np.ndarray:
    """Assert every row read is one that was written (ids unique); return the ids."""
    ids = ins["i"]
    assert len(np.unique(ids)) == len(ids), "a row was read twice"
    assert np.all(ids >= 1), "a row with id 0: zeros were read back as data"
    exp_in, exp_out = known_rows(ids)
    np.testing.assert_array_equal(ins["v"], exp_in[1])
    np.testing.assert_array_equal(outs["y"], exp_out[0])
    np.testing.assert_array_equal(outs["k"], exp_out[1])
    return ids
