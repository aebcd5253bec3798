"""A torch.export program over variable-length inputs (an LSTM over hits), served with fn.load_exported:
answers, save/load, width checks, a certified gate calibrated on held-out calls, refusals."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import phasm  # noqa: E402
from phasm.backends import BackendError, get_backend  # noqa: E402
from phasm.backends.torch_ragged_export import TorchRaggedExportBackend, encoded_width  # noqa: E402
from phasm.bindings.ragged import RaggedArray, RaggedInputs, encode  # noqa: E402
from phasm.gate import RaggedConformalGate  # noqa: E402
from phasm.train.exported import load_exported  # noqa: E402
from phasm.train.ragged import ragged_matrices  # noqa: E402

L = 6


@dataclasses.dataclass
class Hit:
    x: float
    y: float


class MaskedSum(torch.nn.Module):
    """Exact answers to check the layout: (scale * sum of x over the hits, count, sum of y)."""

    def forward(self, enc: torch.Tensor) -> torch.Tensor:
        scale = enc[:, :1]
        vals = enc[:, 1 : 1 + 2 * L].reshape(-1, L, 2)
        mask = enc[:, 1 + 2 * L :]
        sums = (vals * mask[:, :, None]).sum(1)
        return torch.cat([scale * sums[:, :1], mask.sum(1, keepdim=True), sums[:, 1:]], 1)


class LastHitLSTM(torch.nn.Module):
    """An LSTM over the hits in order; the state after the last real hit, plus the fixed input, gives the answer."""

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lstm = torch.nn.LSTM(2, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden + 1, 3)

    def forward(self, enc: torch.Tensor) -> torch.Tensor:
        n = enc.shape[0]
        vals = enc[:, 1 : 1 + 2 * L].reshape(n, L, 2)
        count = enc[:, 1 + 2 * L :].sum(1)
        out, _ = self.lstm(vals)
        last = (count - 1).clamp(0, L - 1).long()
        h = out.gather(1, last[:, None, None].expand(n, 1, out.shape[2]))[:, 0]
        return self.head(torch.cat([h, enc[:, :1]], 1))


def export(module: torch.nn.Module, width: int, path: Path) -> Path:
    example = torch.zeros(3, width)
    example[:, 1 + 2 * L :] = 1.0
    prog = torch.export.export(module.eval(), (example,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    torch.export.save(prog, str(path))
    return path


def make_fn(max_len: int | None = L, store: Path | None = None):
    @phasm.surrogate(inputs={"scale": phasm.Scalar(), "hits": phasm.each("hits", fields=["x", "y"], max_len=max_len)},
                     outputs={"out": phasm.Array((3,))}, store=store, name="t.hits")
    def summed(scale: float, hits: list[Hit]) -> np.ndarray:
        x = np.array([h.x for h in hits])
        y = np.array([h.y for h in hits])
        return np.array([scale * x.sum(), len(hits), y.sum()])

    return summed


def events(n: int, seed: int, lo: int = 1, hi: int = L) -> list[tuple[float, list[Hit]]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        m = int(rng.integers(lo, hi + 1))
        out.append((float(rng.uniform(0.5, 2.0)), [Hit(float(a), float(b)) for a, b in rng.uniform(-1, 1, (m, 2))]))
    return out


@pytest.fixture(scope="module")
def masked_sum_pt2(tmp_path_factory) -> Path:
    return export(MaskedSum(), encoded_width(1, [2], L), tmp_path_factory.mktemp("rx") / "sum.pt2")


def test_answers_in_user_units_and_the_layout_is_the_documented_one(masked_sum_pt2, tmp_path) -> None:
    fn = make_fn()
    fn(1.0, [Hit(0.0, 0.0)])  # one call settles the spec
    fn.load_exported(masked_sum_pt2)
    assert fn.model.backend.name == "torch-ragged-export" and fn.model.training["max_len"] == L
    fn.mode = "model"
    for scale, hits in events(30, seed=1):
        expect = [scale * sum(h.x for h in hits), len(hits), sum(h.y for h in hits)]
        np.testing.assert_allclose(fn(scale, hits), expect, rtol=1e-5, atol=1e-5)
    # the same artefact answers a batch of calls at once (RaggedInputs), equal to the one-call answers
    evs = events(50, seed=2)
    X = RaggedInputs(np.array([[s] for s, _ in evs], np.float32),
                     {"hits": RaggedArray.from_list([[(h.x, h.y) for h in hs] for _, hs in evs], (2,), np.float32)})
    np.testing.assert_allclose(fn.model.predict(X)[:, 1], [len(hs) for _, hs in evs])
    # saved and loaded back without the module's code; checksummed like every model folder
    saved = fn.save(tmp_path / "model")
    g = make_fn()
    g.load(saved)
    g.mode = "model"
    np.testing.assert_allclose(g(2.0, [Hit(1.0, 3.0), Hit(0.5, -1.0)]), [3.0, 2.0, 2.0], rtol=1e-6)
    assert get_backend("torch-ragged-export") is TorchRaggedExportBackend


def test_an_lstm_through_load_exported_matches_the_module(tmp_path) -> None:
    net = LastHitLSTM().eval()
    pt2 = export(net, encoded_width(1, [2], L), tmp_path / "lstm.pt2")
    fn = make_fn()
    fn(1.0, [Hit(0.0, 0.0)])
    fn.load_exported(pt2)
    fn.mode = "model"
    evs = events(40, seed=3)
    got = np.array([fn(s, hs) for s, hs in evs])
    X = RaggedInputs(np.array([[s] for s, _ in evs], np.float32),
                     {"hits": RaggedArray.from_list([[(h.x, h.y) for h in hs] for _, hs in evs], (2,), np.float32)})
    with torch.no_grad():
        expect = net(torch.from_numpy(encode(X, length=L))).numpy()
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-6)
    # order matters to an LSTM (not to a set model): reversing the hits changes the answer
    s, hs = evs[0]
    assert not np.allclose(fn(s, hs), fn(s, hs[::-1]))


def test_a_certified_gate_calibrated_for_the_exported_model(masked_sum_pt2, tmp_path) -> None:
    fn = make_fn(store=tmp_path / "cap.h5")
    fn.mode = "capture"
    for s, hs in events(3000, seed=4):  # more training calls than the domain's reference set (2048 + 200)
        fn(s, hs)
    X, Y = ragged_matrices(fn.spec, *fn.capture_store().read())
    fn.load_exported(masked_sum_pt2)
    idx = np.random.default_rng(0).permutation(len(Y))
    train, cal = idx[:2400], idx[2400:]
    gate = RaggedConformalGate(phasm.Tolerance(rel=1e-3, max_miss_rate=0.05)).fit(
        X.take(cal), Y[cal], fn.model, X_train=X.take(train))
    assert gate.report_.certified and gate.report_.miss_rate_bound <= 0.05
    fn.gate = gate
    fn.mode = "auto"
    fn.reset_stats()
    for s, hs in events(100, seed=5):
        fn(s, hs)
    assert fn.stats.model_calls >= 90  # in-distribution calls: the model answers
    far = [Hit(40.0, 40.0)] * 3  # far outside the captured hits: the original answers
    np.testing.assert_allclose(fn(1.0, far), [120.0, 3.0, 120.0])
    assert fn.stats.fallbacks >= 1


def test_refusals_name_what_is_wrong(masked_sum_pt2, tmp_path) -> None:
    fn = make_fn()
    fn(1.0, [Hit(0.0, 0.0)])
    with pytest.raises(BackendError, match=r"does not run on a \(2, 22\) encoded batch .* max_len=7"):
        load_exported(masked_sum_pt2, fn.spec, max_len=7)   # exported for 6 elements per set
    no_len = make_fn(max_len=None)
    no_len(1.0, [Hit(0.0, 0.0)])
    with pytest.raises(phasm.SpecError, match=r"\['hits'\] declare no max_len"):
        no_len.load_exported(masked_sum_pt2)
    assert no_len.load_exported(masked_sum_pt2, max_len=L).model.backend.params["max_len"] == L
    wrong_out = export(torch.nn.Linear(encoded_width(1, [2], L), 2), encoded_width(1, [2], L), tmp_path / "lin.pt2")
    with pytest.raises(BackendError, match=r"returns \(2, 2\) for a batch of 2; expected \(2, 3\)"):
        fn.load_exported(wrong_out)
    with pytest.raises(BackendError, match="serves a program trained elsewhere"):
        TorchRaggedExportBackend(max_len=L).fit(None)
    with pytest.raises(BackendError, match="max_len must be >= 1, got 0"):
        TorchRaggedExportBackend(max_len=0)
    fn.load_exported(masked_sum_pt2)
    too_long = RaggedInputs(np.ones((1, 1), np.float32), {"hits": RaggedArray.from_list([np.zeros((L + 1, 2))], (2,), np.float32)})
    with pytest.raises(BackendError, match=f"7 elements in one set; the program was exported for at most max_len={L}"):
        fn.model.predict(too_long)
