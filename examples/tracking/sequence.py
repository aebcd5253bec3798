"""A sequence model over hits: an LSTM that reads an event's hits in order and returns the track's start state.

It takes phasm's encoded layout for a variable-length input padded to
``max_len`` (the ``torch-ragged-export`` backend's: per row ``max_len`` hits of
``(x, y, z)`` flattened, then an ``max_len``-wide 0/1 mask), so once exported
with ``torch.export`` it is served by ``fn.load_exported`` on the same
function the DeepSets model answers.  Hits arrive in the order the detector
planes recorded them; the LSTM's state after the last real hit (padding never
reaches it) and the hit count go through an MLP head.  Standardisation lives
inside the module, so it works in user units.

Example
-------
>>> net = HitLSTM(np.zeros(3), np.ones(3), np.zeros(5), np.ones(5), max_len=10, hidden=8)
>>> net(torch.zeros(2, 40)).shape
torch.Size([2, 5])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fitting import fit_scaled_mse


class HitLSTM(torch.nn.Module):
    """LSTM over ``max_len`` padded hits of ``k`` features, answer from the state after the last real hit."""

    def __init__(self, hit_mean: Any, hit_scale: Any, y_mean: Any, y_scale: Any, *, max_len: int, hidden: int = 64,
                 layers: int = 2, head: int = 64, seed: int = 0) -> None:
        super().__init__()
        for name, v in (("hit_mean", hit_mean), ("hit_scale", hit_scale), ("y_mean", y_mean), ("y_scale", y_scale)):
            self.register_buffer(name, torch.as_tensor(np.asarray(v, np.float32)))
        self.max_len, self.k = int(max_len), int(len(hit_mean))
        torch.manual_seed(seed)
        self.slope_scale = 0.3  # the largest track slopes
        self.bend_scale = 0.5  # per metre: about the largest change of slope (1 GeV, 1.9 T)
        self.lstm = torch.nn.LSTM(self.k + 4, hidden, num_layers=layers, batch_first=True)
        self.head = torch.nn.Sequential(torch.nn.Linear(hidden + 1, head), torch.nn.SiLU(), torch.nn.Linear(head, len(y_mean)))

    def forward(self, enc: torch.Tensor) -> torch.Tensor:
        n, L, k = enc.shape[0], self.max_len, self.k
        mask = enc[:, L * k :]
        raw = enc[:, : L * k].reshape(n, L, k)
        hits = (raw - self.hit_mean) / self.hit_scale
        # Local slopes between consecutive hits (dx/dz, dy/dz), and their change per metre: the bending,
        # proportional to q/p times the field. Zero where a hit has no predecessor (or none before that).
        step = raw[:, 1:] - raw[:, :-1]
        slopes = step[:, :, :2] / step[:, :, 2:3].clamp_min(1e-3) * mask[:, 1:, None]
        slopes = torch.cat([torch.zeros_like(slopes[:, :1]), slopes], 1)
        dz = step[:, :, 2].clamp_min(1e-3)
        bend = (slopes[:, 2:] - slopes[:, 1:-1]) / dz[:, 1:, None] * mask[:, 2:, None]
        bend = torch.cat([torch.zeros_like(slopes[:, :2]), bend], 1)
        feats = torch.cat([hits, slopes / self.slope_scale, bend / self.bend_scale], 2) * mask[:, :, None]
        out, _ = self.lstm(feats)
        count = mask.sum(1)
        last = (count - 1).clamp(0, L - 1).long()
        h = out.gather(1, last[:, None, None].expand(n, 1, out.shape[2]))[:, 0]
        return self.head(torch.cat([h, count[:, None] / L], 1)) * self.y_scale + self.y_mean


def train_lstm(enc: np.ndarray, Y: np.ndarray, hits: np.ndarray, *, max_len: int, hidden: int = 64, layers: int = 2,
               epochs: int = 40, batch_size: int = 128, lr: float = 3e-3, val_fraction: float = 0.15,
               seed: int = 0) -> tuple[HitLSTM, dict[str, Any]]:
    """Fit :class:`HitLSTM` on encoded rows ``enc`` and targets ``Y`` (``hits``: all real hits, for their statistics)."""
    enc = np.asarray(enc, np.float32)
    Y = np.asarray(Y, np.float32)
    rng = np.random.default_rng([seed, 5])
    val = rng.random(len(enc)) < val_fraction
    net = HitLSTM(hits.mean(0), hits.std(0), Y[~val].mean(0), Y[~val].std(0), max_len=max_len, hidden=hidden,
                  layers=layers, seed=seed)
    return fit_scaled_mse(net, enc, Y, val, 1.0 / net.y_scale, epochs=epochs, batch_size=batch_size, lr=lr,
                          seed=seed, pct_start=0.15)
