"""Variable-length outputs: a function returning a list of clusters is captured, modelled as a
count plus padded element slots, and in model mode returns a list of cluster objects again."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import phasm
from phasm.bindings import RaggedArray, Spec, SpecError, pack, unpack


@dataclasses.dataclass
class Cluster:
    e: float
    layer: int


def showers(E: float, n: int) -> list[Cluster]:
    total = n * (n + 1) / 2
    return [Cluster(E * (i + 1) / total, i) for i in range(n)]


OUT = {"clusters": phasm.each("return", fields=["e", "layer"], cls=Cluster, max_len=4)}


def test_pack_unpack_of_a_ragged_output_round_trips():
    spec = Spec.from_declarations("m.f", {"E": phasm.Scalar()}, OUT)
    v = spec["clusters"]
    assert v.size == 1 + 4 * 2 and spec.n_out_features == 9
    rows = RaggedArray.from_list([np.array([[1.5, 0], [2.5, 1]]), np.zeros((0, 2)), np.array([[3.0, 0]])], (2,))
    Y = pack(spec.outputs, {"clusters": rows}, 3)
    assert Y.shape == (3, 9) and Y[:, 0].tolist() == [2, 0, 1] and Y[0, 1:5].tolist() == [1.5, 0, 2.5, 1]
    assert unpack(spec.outputs, Y)["clusters"] == rows
    Y[0, 0] = 7.4  # a model's count is rounded and clipped to max_len
    assert len(unpack(spec.outputs, Y)["clusters"][0]) == 4
    too_long = RaggedArray.from_list([np.zeros((5, 2))], (2,))
    with pytest.raises(ValueError, match="5 elements, more than max_len=4"):
        pack(spec.outputs, {"clusters": too_long}, 1)
    no_max = Spec.from_declarations("m.f", {"E": phasm.Scalar()}, {"c": phasm.each("return", fields=["e"])})
    with pytest.raises(SpecError, match="'c': a variable-length output needs a declared maximum length"):
        pack(no_max.outputs, {"c": RaggedArray.from_list([np.zeros((1, 1))], (1,))}, 1)


def test_list_of_clusters_captured_trained_and_served(tmp_path):
    @phasm.surrogate(inputs={"E": phasm.Scalar(), "n": phasm.Scalar("int64")}, outputs=OUT,
                     store=tmp_path / "showers.h5", mode="capture")
    def shower(E: float, n: int) -> list[Cluster]:
        return showers(E, n)

    rng = np.random.default_rng(0)
    for _ in range(400):
        shower(float(rng.uniform(1, 10)), int(rng.integers(1, 4)))
    ins, outs = shower.capture_store().read()
    assert outs["clusters"].lengths.tolist() == ins["n"].tolist()  # no padding on disk
    shower.train(backend="ridge", degree=3)
    shower.mode = "model"
    for E, n in ((2.0, 1), (5.0, 2), (8.0, 3)):
        got = shower(E, n)
        want = showers(E, n)
        assert [type(c) for c in got] == [Cluster] * n and [c.layer for c in got] == [c.layer for c in want]
        assert [c.e for c in got] == pytest.approx([c.e for c in want], rel=0.02, abs=0.02)
    shower.mode = "shadow"
    assert shower(4.0, 2) == showers(4.0, 2)
    assert shower.stats.shadow_rows == 1
