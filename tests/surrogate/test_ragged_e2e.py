"""End to end: a least-squares line fit over a variable number of hit objects is captured,
trained (DeepSets backend ``torch-sets``, picked automatically), saved, loaded and served
in model, auto and shadow modes, with outputs written back into result objects."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import phasm
from phasm.store import CaptureStore

pytest.importorskip("torch")


@dataclasses.dataclass
class Hit:
    x: float
    y: float


@dataclasses.dataclass
class LineFit:
    slope: float
    intercept: float


class Result:
    """A caller-owned output object (the function fills it)."""

    slope = 0.0
    intercept = 0.0


def least_squares(hits: list[Hit]) -> tuple[float, float]:
    x = np.array([h.x for h in hits])
    y = np.array([h.y for h in hits])
    (a, b), *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1), y, rcond=None)
    return float(a), float(b)


HITS = {"hits": phasm.each("hits", fields=["x", "y"], max_len=16)}
SMALL_NET = dict(phi_hidden=(32, 32), rho_hidden=(64, 64), epochs=40, batch_size=64, lr=3e-3, patience=10)


def make_events(n: int, seed: int) -> list[list[Hit]]:
    rng = np.random.default_rng(seed)
    events = []
    for _ in range(n):
        m = int(rng.integers(3, 13))
        a, b = rng.uniform(-1, 1, 2)
        x = rng.uniform(0, 1, m)
        y = a * x + b + rng.normal(0, 0.01, m)
        events.append([Hit(float(u), float(v)) for u, v in zip(x, y)])
    return events


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ragged")

    @phasm.surrogate(inputs=HITS, outputs=phasm.fields("return", LineFit), store=root / "fits.h5", mode="capture")
    def fit_line(hits: list[Hit]) -> LineFit:
        return LineFit(*least_squares(hits))

    events = make_events(1500, seed=0)
    for e in events:
        fit_line(e)
    store = fit_line.capture_store()
    result = fit_line.train(**SMALL_NET)  # backend "torch" + ragged inputs -> torch-sets
    fit_line.save(root / "model")
    return fit_line, store, result, root


def test_capture_stores_every_hit_without_padding(trained):
    fit_line, store, _, _ = trained
    assert isinstance(store, CaptureStore) and len(store) == 1500
    ins, outs = store.read(0, 3)
    first = make_events(3, seed=0)
    for i, hits in enumerate(first):
        assert ins["hits"][i].tolist() == [[h.x, h.y] for h in hits]
        assert outs["slope"][i] == pytest.approx(least_squares(hits)[0], abs=0)


def test_model_mode_serves_accurate_fits_as_result_objects(trained):
    fit_line, _, result, _ = trained
    assert result.backend == "torch-sets" and result.n_train > 1000
    fit_line.mode = "model"
    test = make_events(200, seed=99)
    preds = [fit_line(e) for e in test]
    assert all(type(p) is LineFit for p in preds)
    err = np.array([[p.slope - t[0], p.intercept - t[1]] for p, t in zip(preds, map(least_squares, test))])
    mae = np.abs(err).mean(0)
    # slopes and intercepts span [-1, 1] (mean absolute deviation 0.5): the set model must do far better
    assert mae[0] < 0.1 and mae[1] < 0.06, mae
    # permutation invariance: shuffled hits give the same answer
    shuffled = list(reversed(test[0]))
    again = fit_line(shuffled)
    assert again.slope == pytest.approx(preds[0].slope, abs=1e-5)
    assert fit_line.stats.model_calls == 201


def test_saved_model_fills_caller_objects_in_another_function(trained):
    _, _, _, root = trained

    @phasm.surrogate(inputs=HITS, outputs={"slope": phasm.attr("result.slope"), "intercept": phasm.attr("result.intercept")},
                     model=root / "model", mode="model")
    def fit_into(hits: list[Hit], result: Result) -> None:
        result.slope, result.intercept = least_squares(hits)

    hits = make_events(1, seed=5)[0]
    out = Result()
    assert fit_into(hits, out) is None
    a, b = least_squares(hits)
    assert abs(out.slope - a) < 0.3 and abs(out.intercept - b) < 0.3


def test_auto_and_shadow_modes_with_ragged_inputs(trained):
    fit_line, _, _, _ = trained
    fit_line.mode = "auto"
    hits = make_events(1, seed=7)[0]
    model_calls = fit_line.stats.model_calls
    p = fit_line(hits)
    assert type(p) is LineFit and fit_line.stats.model_calls == model_calls + 1  # the gate trusted the model
    a, b = least_squares(hits)
    assert abs(p.slope - a) < 0.3 and abs(p.intercept - b) < 0.3
    fit_line.mode = "shadow"
    before = fit_line.stats.shadow_rows
    exact = fit_line(hits)
    assert (exact.slope, exact.intercept) == least_squares(hits)  # shadow returns the original's answer
    assert fit_line.stats.shadow_rows == before + 1 and "slope" in fit_line.stats.shadow_error
    # too many hits for the declared maximum: a clear error naming the variable
    fit_line.mode = "model"
    with pytest.raises(phasm.SpecError, match=r"'hits'.*more than the declared max_len=16"):
        fit_line(hits * 6)
