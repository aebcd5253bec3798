"""Variable-length inputs with zero elements (an event with no hits) in every mode: never a reshape error."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import phasm
from phasm.bindings import RaggedArray
from phasm.bindings.layout import RaggedInputs, RaggedLayout
from phasm.bindings.spec import Variable


@dataclass
class Hit:
    x: float
    y: float


@dataclass
class Event:
    hits: list


def hit_sum(event: Event) -> float:
    return float(sum(h.x + h.y for h in event.hits))


def test_layout_packs_and_summarises_empty_collections():
    layout = RaggedLayout.for_variables([Variable("hits", (2,), np.dtype("f8"), ragged=True), Variable("b", (), np.dtype("f8"))])
    X = layout.pack_call([np.zeros((0, 2)), 1.5])
    assert X.sets["hits"].values.shape == (0, 2) and X.fixed.tolist() == [[1.5]]
    empty = RaggedArray.from_list([np.zeros((0, 2)), np.zeros((0, 2))])
    B = layout.pack_batch({"hits": empty, "b": np.array([1.0, 2.0])}, 2)
    assert B.sets["hits"].values.shape == (0, 2)
    assert layout.summarize(B).tolist() == [[1, 0, 0, 0], [2, 0, 0, 0]]
    assert layout.finite_rows(RaggedInputs(B.fixed, B.sets)).tolist() == [True, True]


@pytest.mark.parametrize("first_empty", [True, False])
def test_events_without_hits_in_capture_model_and_auto_modes(tmp_path, first_empty):
    pytest.importorskip("torch")
    fn = phasm.surrogate(hit_sum, name="tests.hit_sum", store=tmp_path / "h.h5", mode="capture",
                         inputs={"hits": phasm.each("event.hits", fields=["x", "y"], max_len=6)},
                         outputs={"s": phasm.Scalar()})
    rng = np.random.default_rng(0)
    events = [Event([Hit(*rng.uniform(0, 1, 2)) for _ in range(int(rng.integers(0, 5)))]) for _ in range(200)]
    if first_empty:
        events[0] = Event([])
    for e in events:
        fn(e)
    fn.train(epochs=5, seed=0)
    for mode in ("model", "auto"):
        fn.mode = mode
        assert np.isfinite(fn(Event([])))
        assert np.isfinite(fn(Event([Hit(0.5, 0.5)])))
    # many rows at once, all of them empty: the padded (torch) path as well as the numpy one
    X = RaggedInputs(np.zeros((300, 0), np.float32), {"hits": RaggedArray.from_list([np.zeros((0, 2))] * 300)})
    assert fn.model.predict(X).shape == (300, 1)
