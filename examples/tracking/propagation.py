"""Track propagation to the detector plane, wrapped by phasm, and the network that replaces it.

The original: the adaptive Runge-Kutta-Nystrom propagation through the field
map from the target plane to ``Z_DETECTOR`` (:mod:`propagate`), in two entry
points sharing one spec (start state in, state on the plane out):

* :func:`make_propagators` ``-> (propagate_track, propagate_batch)``: one track
  in plain floats (the way a reconstruction steps a track), and many tracks
  vectorised in numpy (``batched=True``).

The surrogate, :class:`HelixNet`, is physics first: the exact helix of a
uniform field (``b0`` learned), plus a small MLP that learns what the real
map adds (the field falls towards the solenoid's end, has radial components
and a misaligned coil): a few millimetres, which the MLP gets to a few
percent.  It works in user units (its standardisation is inside), is exported
with ``torch.export`` and served by phasm's ``fn.load_exported``.

Example
-------
>>> net = HelixNet(np.zeros(5), np.ones(5), np.zeros(4), np.ones(4), dz=1.6, hidden=(8,))
>>> net(torch.zeros(3, 5)).shape
torch.Size([3, 4])
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

import phasm
from detector import TOLERANCE, Z0, Z_DETECTOR
from fitting import fit_scaled_mse
from propagate import KAPPA, propagate, propagate_one

DECLARATIONS = dict(
    inputs={name: phasm.Scalar() for name in ("x", "y", "tx", "ty", "qop")},
    outputs={"pos": phasm.Array((2,)), "slope": phasm.Array((2,))},
)


def make_propagators(field_map: Any, store: Path | None = None) -> tuple[Any, Any]:
    """``(propagate_track, propagate_batch)`` for ``field_map`` (a :class:`magnet.FieldMap`), sharing one spec."""

    @phasm.surrogate(**DECLARATIONS, store=store, name="tracking.propagate")
    def propagate_track(x: float, y: float, tx: float, ty: float, qop: float) -> tuple[np.ndarray, np.ndarray]:
        """One track from the target plane to the detector plane: ``(x, y)`` and ``(tx, ty)`` there."""
        ((px, py, sx, sy),) = propagate_one(x, y, tx, ty, qop, Z0, (Z_DETECTOR,), field_map.lookup_one, tolerance=TOLERANCE)
        return np.array([px, py]), np.array([sx, sy])

    @phasm.surrogate(**DECLARATIONS, batched=True, store=store, name="tracking.propagate_batch")
    def propagate_batch(x: np.ndarray, y: np.ndarray, tx: np.ndarray, ty: np.ndarray,
                        qop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Many tracks at once: ``(n, 2)`` positions and ``(n, 2)`` slopes on the detector plane."""
        end = propagate(np.column_stack([x, y, tx, ty, qop]), Z0, (Z_DETECTOR,), field_map.lookup, tolerance=TOLERANCE)[:, 0]
        return end[:, :2], end[:, 2:]

    return propagate_track, propagate_batch


class HelixNet(torch.nn.Module):
    """``helix(state; b0) + MLP(standardised state) * r_scale + r_mean``: ``(batch, 5)`` -> ``(batch, 4)`` in user units.

    ``x_mean/x_scale`` standardise the state for the MLP; ``r_mean/r_scale`` are
    the statistics of the residual (map minus helix) it learns; ``dz`` is the
    distance from the start plane to the detector plane.
    """

    def __init__(self, x_mean: Any, x_scale: Any, r_mean: Any, r_scale: Any, *, dz: float, b0: float = 1.8,
                 hidden: Sequence[int] = (64, 64), seed: int = 0) -> None:
        super().__init__()
        for name, v in (("x_mean", x_mean), ("x_scale", x_scale), ("r_mean", r_mean), ("r_scale", r_scale)):
            self.register_buffer(name, torch.as_tensor(np.asarray(v, np.float32)))
        self.dz = float(dz)
        self.b0 = torch.nn.Parameter(torch.tensor(float(b0)))
        g = torch.Generator().manual_seed(seed)
        layers: list[torch.nn.Module] = []
        width = 5
        for h in hidden:
            layers += [torch.nn.Linear(width, h), torch.nn.SiLU()]
            width = h
        layers.append(torch.nn.Linear(width, 4))
        with torch.no_grad():
            for m in layers:
                if isinstance(m, torch.nn.Linear):
                    bound = 1.0 / math.sqrt(m.in_features)
                    m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 2 * bound - bound)
                    m.bias.zero_()
        self.mlp = torch.nn.Sequential(*layers)

    def helix(self, s: torch.Tensor) -> torch.Tensor:
        """The uniform-field helix from the start plane to the detector plane: ``(x, y, tx, ty)``."""
        x, y, tx, ty, qop = s.unbind(1)
        w = KAPPA * qop * self.b0 * torch.sqrt(1.0 + tx * tx + ty * ty)
        phi = w * self.dz
        sw = torch.sinc(phi / math.pi) * self.dz                              # sin(phi) / w
        cw = -torch.sin(0.5 * phi) * torch.sinc(phi / (2 * math.pi)) * self.dz  # (cos(phi) - 1) / w
        c, sn = torch.cos(phi), torch.sin(phi)
        return torch.stack([x + tx * sw - ty * cw, y + ty * sw + tx * cw, tx * c + ty * sn, -tx * sn + ty * c], 1)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.helix(s) + self.mlp((s - self.x_mean) / self.x_scale) * self.r_scale + self.r_mean


def train_helix_net(X: np.ndarray, Y: np.ndarray, *, dz: float, hidden: Sequence[int] = (64, 64), epochs: int = 60,
                    batch_size: int = 256, lr: float = 3e-3, val_fraction: float = 0.1, seed: int = 0,
                    b0: float = 1.8) -> tuple[HelixNet, dict[str, Any]]:
    """Fit :class:`HelixNet` to start states ``X (n, 5)`` and plane states ``Y (n, 4)`` (Adam, one-cycle schedule).

    Returns the network (eval mode, best validation epoch) and a record of the training.
    """
    X = np.asarray(X, np.float32)
    Y = np.asarray(Y, np.float32)
    rng = np.random.default_rng([seed, 3])
    val = rng.random(len(X)) < val_fraction
    probe = HelixNet(np.zeros(5), np.ones(5), np.zeros(4), np.ones(4), dz=dz, b0=b0, hidden=hidden, seed=seed)
    with torch.no_grad():
        resid = Y[~val] - probe.helix(torch.from_numpy(X[~val])).numpy()
    net = HelixNet(X[~val].mean(0), X[~val].std(0), resid.mean(0), resid.std(0), dz=dz, b0=b0, hidden=hidden, seed=seed)
    net, record = fit_scaled_mse(net, X, Y, val, 1.0 / net.r_scale, epochs=epochs, batch_size=batch_size, lr=lr,
                                 seed=seed, pct_start=0.1)
    return net, {**record, "b0": float(net.b0.detach())}


def export(net: torch.nn.Module, n_in: int, path: Path) -> Path:
    """Save ``net`` as a ``torch.export`` program with a dynamic batch axis (phasm loads it with ``load_exported``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(4, n_in)
    if n_in == 5:  # a start state: q/p away from 0
        example[:, 4] = 0.5
    with warnings.catch_warnings():  # nn.LSTM's flattened weights: torch notes them, harmlessly
        warnings.filterwarnings("ignore", message=".*were assigned during export.*")
        prog = torch.export.export(net.eval(), (example,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    torch.export.save(prog, str(path))
    return path
