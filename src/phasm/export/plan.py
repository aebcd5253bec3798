"""What a model computes, read from its artefact into plain arrays the code generators print.

A :class:`ModelPlan` holds, for every member of the model (one, or the K of an ensemble), its
arithmetic exactly as phasm's Python ``model`` mode runs it:

* a torch MLP (``backend="torch"``, the default MLP with or without its linear skip path and its
  input column selection): float32 dense layers ``y = x W + b`` and activations.  When Python folds
  the standardisation into the first and last layers (a single MLP whose input means are within
  ``TorchBackend.FOLD_MAX_OFFSET`` standard deviations of zero), the plan folds it the same way, in
  float64 then rounded to float32, so the C weights are the very weights Python runs;
* ridge regression on polynomial features: the monomials and their float64 coefficients (Python
  evaluates ridge in float64, so the C code does too);
* an ensemble of either: its members, averaged.

Anything else is refused with :class:`~phasm.errors.ExportError` naming what cannot be exported.

Per-variable transforms (log and the like, applied before standardisation) and the input columns a
model reads (constants and duplicates in the captures are not read) are read in one place,
:func:`phasm.export.transforms.variable_transforms`; the plan carries them to the generators, and
members index the caller's full input row (their column selection composed with the model's).

Example
-------
>>> import numpy as np, phasm
>>> from phasm.train import fit_model
>>> spec = phasm.Spec.from_declarations("m.f", {"x": phasm.Scalar()}, {"y": phasm.Scalar()})
>>> X = np.linspace(0, 1, 50)[:, None]
>>> art, _ = fit_model((X, 3 * X ** 2), spec, backend="ridge", degree=2)
>>> plan = model_plan(art)
>>> plan.kind, len(plan.members), plan.members[0].terms.tolist()
('ridge', 1, [[0, 1], [0, 0]])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from phasm.errors import ExportError, NotDescribable
from phasm.export.transforms import VariableTransforms, variable_transforms

EXPORTABLE = ("torch (default MLP, optional skip path)", "ridge", "ensemble of torch MLPs or of ridge models")


@dataclass
class Dense:
    """``y = x @ weight + bias`` in float32, then ``activation`` (``None``: linear)."""

    weight: np.ndarray  # (n_in, n_out) float32
    bias: np.ndarray  # (n_out,) float32
    activation: str | None = None


@dataclass
class MLPMember:
    """One torch MLP: ``select`` (input columns it reads, ``None``: all), its layers, the skip path."""

    select: np.ndarray | None
    layers: list[Dense]
    skip: Dense | None = None
    kind: str = "mlp"


@dataclass
class RidgeMember:
    """Ridge on monomials: ``terms[t]`` lists the input columns multiplied in monomial ``t``, padded
    with ``n_in`` (a slot that holds 1.0); ``coef`` is ``(1 + n_terms, n_out)`` float64, row 0 the
    intercept."""

    terms: np.ndarray  # (n_terms, degree) int
    coef: np.ndarray  # (1 + n_terms, n_out) float64
    kind: str = "ridge"


@dataclass
class ModelPlan:
    """A model as plain arrays: members, the standardisation, how members are combined."""

    kind: str  # "mlp" | "ridge" | "ensemble"
    n_in: int
    n_out: int
    members: list[Any]
    x_mean: np.ndarray  # float32 (n_in,)
    x_scale: np.ndarray
    y_mean: np.ndarray  # float32 (n_out,)
    y_scale: np.ndarray
    folded: bool  # standardisation folded into the (single) member's weights
    transforms: VariableTransforms
    description: str
    notes: list[str] = field(default_factory=list)

    @property
    def ensemble(self) -> bool:
        return self.kind == "ensemble"


def model_plan(art: Any) -> ModelPlan:
    """The :class:`ModelPlan` of a :class:`~phasm.train.ModelArtefact`; ``ExportError`` when not exportable."""
    spec = art.spec
    ragged = [v.name for v in spec.variables if v.ragged]
    if ragged:
        raise ExportError(f"not exportable: variable-length variables {ragged} (set models and their gates run in Python only)")
    backend = art.backend
    name = getattr(backend, "name", type(backend).__name__)
    n_in, n_out = spec.n_in_features, spec.n_out_features
    x_mean = np.asarray(art.x_norm.mean, np.float32)
    x_scale = np.asarray(art.x_norm.scale, np.float32)
    y_mean = np.asarray(art.y_norm.mean, np.float32)
    y_scale = np.asarray(art.y_norm.scale, np.float32)
    transforms = variable_transforms(art)
    columns = getattr(art, "columns", None)
    kept = None if columns is None or columns.identity else np.asarray(columns.kept, np.int64)
    if name == "ensemble":
        member_name = getattr(backend, "member", "?")
        if member_name not in ("torch", "ridge"):
            raise ExportError(f"not exportable: an ensemble of {member_name!r} members; exportable: {', '.join(EXPORTABLE)}")
        members = [_on_columns(_member(m, member_name, i), kept, n_in) for i, m in enumerate(backend.members_)]
        kinds = {m.kind for m in members}
        desc = (f"ensemble of {len(members)} {'torch MLPs' if member_name == 'torch' else 'ridge models'}: "
                + _describe(members[0], n_in, n_out))
        return ModelPlan("ensemble", n_in, n_out, members, x_mean, x_scale, y_mean, y_scale, False, transforms,
                         desc, [f"member kinds {sorted(kinds)}"])
    if name not in ("torch", "ridge"):
        raise ExportError(f"not exportable: backend {name!r}; exportable: {', '.join(EXPORTABLE)}")
    member = _on_columns(_member(backend, name, None), kept, n_in)
    folded = False
    if isinstance(member, MLPMember):
        # Python folds exactly when the inputs' means sit within FOLD_MAX_OFFSET standard deviations
        # (over the columns the model reads).
        offset = np.abs(x_mean.astype(np.float64) / x_scale.astype(np.float64))
        if kept is not None:
            offset = offset[kept]
        limit = float(getattr(type(backend), "FOLD_MAX_OFFSET", 16.0))
        if not (offset.size and float(offset.max()) > limit):
            member = fold_standardisation(member, x_mean, x_scale, y_mean, y_scale)
            folded = True
    return ModelPlan(member.kind, n_in, n_out, [member], x_mean, x_scale, y_mean, y_scale, folded, transforms,
                     _describe(member, n_in, n_out))


def _member(backend: Any, name: str, index: int | None) -> MLPMember | RidgeMember:
    where = f"member {index}" if index is not None else "the model"
    if name == "ridge":
        return _ridge(backend)
    kind = getattr(backend, "kind_", None)
    if kind != "mlp":
        raise ExportError(f"not exportable: {where} is a custom torch module ({kind!r} kind, a torch.export program); "
                          f"exportable: {', '.join(EXPORTABLE)}")
    return _mlp(backend, where)


def _on_columns(member: MLPMember | RidgeMember, kept: np.ndarray | None, n_in: int) -> MLPMember | RidgeMember:
    """``member`` reading the caller's full row: its columns (of the ``kept`` ones) mapped to full-row columns."""
    if kept is None:
        return member
    if isinstance(member, MLPMember):
        select = kept if member.select is None else kept[np.asarray(member.select, np.int64)]
        return MLPMember(np.asarray(select, np.int64), member.layers, member.skip)
    terms = np.asarray(member.terms, np.int64)
    full = np.where(terms < len(kept), kept[np.minimum(terms, len(kept) - 1)], n_in)  # the padding slot moves to n_in
    return RidgeMember(full.astype(np.int64), member.coef)


def _ridge(backend: Any) -> RidgeMember:
    terms = list(backend.terms_)
    coef = np.asarray(backend.coef_, np.float64)
    n_in = int(max((max(t) for t in terms), default=-1) + 1)
    degree = max((len(t) for t in terms), default=1)
    padded = np.full((len(terms), degree), n_in, np.int64)
    for i, t in enumerate(terms):
        padded[i, : len(t)] = t
    return RidgeMember(padded, coef)


def _mlp(backend: Any, where: str) -> MLPMember:
    from phasm.backends.torch_describe import describe_mlp

    try:
        net = describe_mlp(backend.module_)
    except NotDescribable as exc:
        raise ExportError(f"not exportable: {where} {exc}") from None
    layers: list[Dense] = []
    for layer in net.layers:
        if layer[0] == "linear":
            layers.append(Dense(np.ascontiguousarray(layer[1].T), layer[2]))
        elif layers[-1].activation is None:
            layers[-1].activation = layer[1]
        else:
            raise ExportError(f"not exportable: {where} has two activations in a row")
    skip = None if net.skip is None else Dense(np.ascontiguousarray(net.skip[0].T), net.skip[1])
    return MLPMember(net.select, layers, skip)


def fold_standardisation(member: MLPMember, x_mean: np.ndarray, x_scale: np.ndarray, y_mean: np.ndarray,
                         y_scale: np.ndarray) -> MLPMember:
    """The member mapping raw inputs to raw outputs, folded as Python's torch backend folds it:
    ``W' = W / s_x``, ``b' = b - (m_x / s_x) W`` into the first layer, ``W' = W s_y``, ``b' = b s_y + m_y``
    into the last, the skip path scaled by ``s_y`` (``m_y`` added once); float64, then float32."""
    m, s = np.asarray(x_mean, np.float64), np.asarray(x_scale, np.float64)
    if member.select is not None:
        m, s = m[member.select], s[member.select]
    my, sy = np.asarray(y_mean, np.float64), np.asarray(y_scale, np.float64)

    def in_side(d: Dense) -> tuple[np.ndarray, np.ndarray]:
        w = d.weight.astype(np.float64)
        return w / s[:, None], d.bias.astype(np.float64) - (m / s) @ w

    layers = [Dense(d.weight, d.bias, d.activation) for d in member.layers]
    first, last = 0, len(layers) - 1
    for i in sorted({first, last}):
        d = layers[i]
        w, b = in_side(d) if i == first else (d.weight.astype(np.float64), d.bias.astype(np.float64))
        if i == last:
            w, b = w * sy[None, :], b * sy + my
        layers[i] = Dense(w.astype(np.float32), b.astype(np.float32), d.activation)
    skip = None
    if member.skip is not None:
        w, b = in_side(member.skip)
        skip = Dense((w * sy[None, :]).astype(np.float32), (b * sy).astype(np.float32))
    return MLPMember(member.select, layers, skip)


def _describe(member: Any, n_in: int, n_out: int) -> str:
    if isinstance(member, RidgeMember):
        return f"ridge regression on {len(member.terms)} monomials up to degree {member.terms.shape[1]}, float64 coefficients"
    widths = [member.layers[0].weight.shape[0]] + [d.weight.shape[1] for d in member.layers]
    acts = sorted({d.activation for d in member.layers if d.activation})
    parts = [f"torch MLP {' -> '.join(map(str, widths))}", f"activation {', '.join(acts) or 'none'}", "float32 weights"]
    if member.skip is not None:
        parts.append("linear skip path")
    if member.select is not None:
        parts.append(f"reads {len(member.select)} of {n_in} inputs (the others were constant, or duplicates, in training)")
    return ", ".join(parts)
