"""Conditional normalising flows in torch: rational-quadratic spline couplings (Durkan et al. 2019).

A :class:`ConditionalFlow` maps a data vector ``y`` (given a context ``c``) to a standard normal
``z`` through ``layers`` coupling layers.  Each coupling layer leaves one part of ``y`` as it is and
moves the other part through monotone rational-quadratic splines on ``[-bound, bound]`` (identity
outside), whose knots a small MLP computes from the unchanged part and the context.  Both
directions are closed-form: ``log_prob`` (training, density) and ``sample`` (from given normal
noise, so the caller's random generator decides the draw).  A one-dimensional ``y`` is transformed
by every layer, conditioned on the context alone.

Example
-------
>>> import torch
>>> flow = ConditionalFlow(dim=3, context=2, layers=2, hidden=16, bins=4)
>>> y, c = torch.randn(5, 3), torch.randn(5, 2)
>>> z, logdet = flow.forward(y, c)
>>> bool(torch.allclose(flow.sample(z, c), y, atol=1e-4))
True
>>> affine = ConditionalFlow(dim=3, context=2, layers=2, hidden=16, transform="affine")
>>> bool(torch.allclose(affine.sample(affine.forward(y, c)[0], c), y, atol=1e-5))
True
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MIN_WIDTH = MIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3
_UNIT_DERIVATIVE = math.log(math.expm1(1.0 - MIN_DERIVATIVE))  # softplus(.) + MIN_DERIVATIVE == 1


def _bins(raw: torch.Tensor, bound: float, minimum: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin sizes and right edges ``(..., K)`` on ``[-bound, bound]`` from unnormalised ``raw (..., K)``.

    No padded copies of the knots (padding took a sixth of the spline's time): a bin's left edge is
    its right edge less its size.
    """
    K = raw.shape[-1]
    # softmax by hand (torch's is slow for a short last axis); clamped rather than shifted by the maximum,
    # one pass instead of a reduction and a pass: equal wherever |raw| <= 30, bins of at least `minimum` beyond
    e = torch.exp(raw.clamp(-30.0, 30.0))
    size = (2 * bound * minimum) + e * ((2 * bound * (1 - minimum * K)) / e.sum(-1, keepdim=True))
    return size, torch.cumsum(size, dim=-1) - bound


def _bin_of(x: torch.Tensor, raw_w: torch.Tensor, raw_h: torch.Tensor, raw_d: torch.Tensor, bound: float,
            inverse: bool) -> tuple[torch.Tensor, ...]:
    """The bin each element of ``x`` falls in (of the knots in x, or in y for ``inverse``) and its spline's
    numbers: ``inside, xc, wk, xk, hk, yk, dk, dk1, s, span`` (see :func:`rq_spline`)."""
    inside = (x > -bound) & (x < bound)
    xc = x.clamp(-bound, bound)
    w, right_x = _bins(raw_w, bound, MIN_WIDTH)
    h, right_y = _bins(raw_h, bound, MIN_HEIGHT)
    K = w.shape[-1]
    # the bin: how many interior knots lie at or below x (a comparison per knot beats searchsorted for few bins)
    k = (xc[..., None] >= (right_y if inverse else right_x)[..., :-1]).sum(-1, keepdim=True)
    wk, hk = w.gather(-1, k)[..., 0], h.gather(-1, k)[..., 0]
    xk, yk = right_x.gather(-1, k)[..., 0] - wk, right_y.gather(-1, k)[..., 0] - hk
    # The derivatives at the bin's two knots (1 at the end knots): softplus of two raw values per element,
    # not of all K - 1 (which took a quarter of a shower's sampling time).
    kk = k[..., 0]
    dk = torch.where(kk == 0, 1.0, MIN_DERIVATIVE + F.softplus(raw_d.gather(-1, (k - 1).clamp_min(0))[..., 0]))
    dk1 = torch.where(kk == K - 1, 1.0, MIN_DERIVATIVE + F.softplus(raw_d.gather(-1, k.clamp_max(K - 2))[..., 0]))
    s = hk / wk
    return inside, xc, wk, xk, hk, yk, dk, dk1, s, dk1 + dk - 2 * s


def _inverse_theta(xc: torch.Tensor, hk: torch.Tensor, yk: torch.Tensor, dk: torch.Tensor, s: torch.Tensor,
                   span: torch.Tensor) -> torch.Tensor:
    """Where in its bin (0..1) the spline takes the value ``xc``: the root of a quadratic."""
    dy = xc - yk
    a = hk * (s - dk) + dy * span
    b = hk * dk - dy * span
    c = -s * dy
    disc = (b * b - 4 * a * c).clamp_min(0.0)
    return (2 * c) / (-b - torch.sqrt(disc))


def rq_spline(x: torch.Tensor, raw_w: torch.Tensor, raw_h: torch.Tensor, raw_d: torch.Tensor, *, bound: float,
              inverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Monotone rational-quadratic spline with linear (identity) tails: ``(y, log|dy/dx|)`` per element.

    ``x (...)``; ``raw_w, raw_h (..., K)`` and ``raw_d (..., K - 1)`` unnormalised bin widths,
    heights and interior derivatives.  ``inverse=True`` maps back and returns the inverse's log-det.
    """
    inside, xc, wk, xk, hk, yk, dk, dk1, s, span = _bin_of(x, raw_w, raw_h, raw_d, bound, inverse)
    if inverse:
        theta = _inverse_theta(xc, hk, yk, dk, s, span)
        out = theta * wk + xk
    else:
        theta = (xc - xk) / wk
    t1 = theta * (1 - theta)
    if not inverse:
        out = yk + hk * (s * theta * theta + dk * t1) / (s + span * t1)
    den = s + span * t1
    logdet = torch.log(s * s * (dk1 * theta * theta + 2 * s * t1 + dk * (1 - theta) ** 2)) - 2 * torch.log(den)
    if inverse:
        logdet = -logdet
    return torch.where(inside, out, x), torch.where(inside, logdet, torch.zeros_like(logdet))


def rq_spline_inverse(y: torch.Tensor, raw_w: torch.Tensor, raw_h: torch.Tensor, raw_d: torch.Tensor, *,
                      bound: float) -> torch.Tensor:
    """:func:`rq_spline` ``(inverse=True)`` without the log-determinant, which sampling does not need."""
    inside, yc, wk, xk, hk, yk, dk, _, s, span = _bin_of(y, raw_w, raw_h, raw_d, bound, True)
    return torch.where(inside, _inverse_theta(yc, hk, yk, dk, s, span) * wk + xk, y)


def _split(dim: int, layer: int) -> tuple[list[int], list[int]]:
    """(unchanged, transformed) feature indices of coupling layer ``layer``: alternating, then halves."""
    if dim == 1:
        return [], [0]
    idx = list(range(dim))
    kind = layer % 4
    if kind in (0, 1):
        moved = [i for i in idx if i % 2 == kind]
    else:
        half = dim // 2
        moved = idx[half:] if kind == 2 else idx[:half]
    kept = [i for i in idx if i not in moved]
    return kept, moved


AFFINE_LOG_SCALE = 3.0  # |log scale| of one affine coupling stays below this (soft clamp)


class Coupling(torch.nn.Module):
    """One coupling layer: ``y[moved] -> f(y[moved]; MLP(y[kept], context))``.

    ``f`` is a rational-quadratic spline (``transform="spline"``: expressive, about ``3 * bins``
    numbers per moved feature) or an affine map ``y * exp(s) + t`` (``"affine"``: two numbers per
    feature, many times cheaper for wide vectors).
    """

    def __init__(self, dim: int, context: int, layer: int, hidden: int, bins: int, bound: float,
                 transform: str = "spline") -> None:
        super().__init__()
        if transform not in ("spline", "affine"):
            raise ValueError(f"Coupling: transform must be 'spline' or 'affine', got {transform!r}")
        kept, moved = _split(dim, layer)
        self.kept: torch.Tensor
        self.moved: torch.Tensor
        self.register_buffer("kept", torch.tensor(kept, dtype=torch.long), persistent=False)
        self.register_buffer("moved", torch.tensor(moved, dtype=torch.long), persistent=False)
        self.bins, self.bound, self.n_moved, self.transform = bins, bound, len(moved), transform
        self.per_feature = 3 * bins - 1 if transform == "spline" else 2
        last = torch.nn.Linear(hidden, len(moved) * self.per_feature)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(len(kept) + context, hidden), torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden), torch.nn.SiLU(), last)
        torch.nn.init.zeros_(last.weight)  # starts as the identity map
        torch.nn.init.zeros_(last.bias)
        if transform == "spline":
            with torch.no_grad():  # interior derivatives start at 1
                last.bias.view(len(moved), self.per_feature)[:, 2 * bins:] = _UNIT_DERIVATIVE

    def _raw(self, y: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """The transform's numbers ``(n, moved, per_feature)`` from the unchanged part and the context."""
        inp = torch.cat([y.index_select(1, self.kept), context], dim=1) if len(self.kept) else context
        return self.net(inp).view(len(y), self.n_moved, self.per_feature)  # type: ignore[no-any-return]

    def forward(self, y: torch.Tensor, context: torch.Tensor, inverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        p = self._raw(y, context)
        x = y.index_select(1, self.moved)
        if self.transform == "affine":
            log_scale = AFFINE_LOG_SCALE * torch.tanh(p[..., 0] / AFFINE_LOG_SCALE)
            shift = p[..., 1]
            moved = (x - shift) * torch.exp(-log_scale) if inverse else x * torch.exp(log_scale) + shift
            logdet = -log_scale if inverse else log_scale
        else:
            K = self.bins
            moved, logdet = rq_spline(x, p[..., :K], p[..., K:2 * K], p[..., 2 * K:], bound=self.bound, inverse=inverse)
        return y.index_copy(1, self.moved, moved), logdet.sum(1)

    def invert(self, z: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``forward(z, context, inverse=True)[0]``, without computing the log-determinant (sampling)."""
        if self.transform == "affine":
            return self.forward(z, context, inverse=True)[0]
        p = self._raw(z, context)
        K = self.bins
        moved = rq_spline_inverse(z.index_select(1, self.moved), p[..., :K], p[..., K:2 * K], p[..., 2 * K:],
                                  bound=self.bound)
        return z.index_copy(1, self.moved, moved)


def _layer_transform(transform: str, layer: int) -> str:
    """``"mixed"``: splines in the alternating couplings (each feature moved once by a spline), affine
    maps in the halving ones (half the spline work of ``"spline"``)."""
    if transform == "mixed":
        return "spline" if layer % 4 in (0, 1) else "affine"
    return transform


class ConditionalFlow(torch.nn.Module):
    """``y -> z ~ N(0, I)`` given a context; see the module doc."""

    def __init__(self, dim: int, context: int, layers: int = 6, hidden: int = 128, bins: int = 8,
                 bound: float = 5.0, transform: str = "spline") -> None:
        super().__init__()
        self.dim, self.context = int(dim), int(context)
        self.couplings = torch.nn.ModuleList(
            [Coupling(self.dim, self.context, i, hidden, bins, bound, _layer_transform(transform, i))
             for i in range(layers)])

    def forward(self, y: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = y.new_zeros(len(y))
        for c in self.couplings:
            y, ld = c(y, context)
            logdet = logdet + ld
        return y, logdet

    def log_prob(self, y: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        z, logdet = self.forward(y, context)
        return -0.5 * (z * z).sum(1) - 0.5 * self.dim * math.log(2 * math.pi) + logdet

    def sample(self, z: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """The data vectors whose latent codes are ``z`` (normal noise drawn by the caller)."""
        for c in reversed(self.couplings):
            assert isinstance(c, Coupling)
            z = c.invert(z, context)
        return z
