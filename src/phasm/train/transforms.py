"""Per-variable transforms: the scale a model learns a variable on (log of a positive quantity, ...).

Real quantities often span decades (delays, rates, cross sections, pressures): a network trained on
standardised raw values resolves the large ones and drowns the small ones, so a relative tolerance is
out of reach where the values are small.  Each model variable therefore has a *transform*, applied
before the standardisation and inverted after the model answers, so every backend learns on that scale
while callers, metrics and the trust gate's tolerance stay on the caller's scale.

The transforms form a fixed table (a model folder names them; nothing else in it chooses code):

================ ================================================ =========================================
name             model sees                                       for
================ ================================================ =========================================
``standardise``  ``(x - mean) / std`` (the default)              anything
``none``         ``x`` as given (not even standardised)           values already of order one
``log``          ``log(x)``, then standardised                    positive values spanning decades
``asinh``        ``asinh(x / scale)``, then standardised          signed values spanning decades (a signed log)
``logit``        ``log(u / (1 - u))``, ``u = (x - low) / (high - low)``  values bounded in (low, high), crowding an edge
================ ================================================ =========================================

:func:`choose_transforms` picks one per variable from the captured values (see :data:`RULES`); a
declaration (``@phasm.surrogate(transforms={"tau": "log"})``, ``fn.train(transforms=...)``) overrides it.
A transform applies to every element of its variable; an ``inout`` variable has one transform, used on
both sides.  :class:`ColumnTransform` applies them to model rows, column by column.

Example
-------
>>> import numpy as np
>>> from phasm.bindings.spec import Scalar, Spec
>>> spec = Spec.from_declarations("m.f", {"T": Scalar(), "P": Scalar()}, {"tau": Scalar()})
>>> X = np.array([[1000.0, 1.0], [1500.0, 40.0], [1200.0, 300.0]]); Y = np.array([[1e-1], [1e-5], [1e-3]])
>>> chosen = choose_transforms(spec, X, Y)
>>> {name: t.kind for name, t in chosen.items()}
{'T': 'standardise', 'P': 'log', 'tau': 'log'}
>>> ct = ColumnTransform.for_variables(spec.outputs, chosen)
>>> [round(float(z), 3) for z in ct.forward(Y).ravel()], bool(np.allclose(ct.inverse(ct.forward(Y)), Y, rtol=1e-6))
([-2.303, -11.513, -6.908], True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np

from phasm.bindings.spec import Spec, Variable
from phasm.errors import SpecError

__all__ = ["ALIASES", "KINDS", "RULES", "ColumnTransform", "Transform", "check_declared", "choose_for_values",
           "choose_transforms",
           "transforms_from_json", "transforms_to_json"]

KINDS = ("standardise", "none", "log", "asinh", "logit")
ALIASES = {"signed_log": "asinh", "identity": "standardise", "linear": "standardise"}
DECADES = 2.0  # a positive variable whose values span more than this many decades is learnt as its log

RULES = (
    "integer or boolean variables: standardise",
    f"every value > 0, max / min > 10^{DECADES:g}, and the log less skewed than the values: log",
    f"outputs with every value in (0, 1), 1 - x spanning more than {DECADES:g} decades, and the logit less "
    "skewed than the values: logit",
    f"scalar outputs of both signs whose non-zero magnitudes span more than {DECADES:g} decades from their 10th "
    "to their 90th percentile: asinh, scale = 5th percentile of the non-zero magnitudes",
    "anything else: standardise",
)


@dataclass(frozen=True)
class Transform:
    """One variable's transform: a ``kind`` from :data:`KINDS` and its parameters.

    ``scale``: of ``asinh`` (``asinh(x / scale)``); ``low``/``high``: the bounds of ``logit``;
    ``why``: how it was chosen (a rule and the numbers behind it, or ``"declared"``), for reports.

    >>> Transform("log").describe(), Transform("asinh", scale=0.01).describe()
    ('log', 'asinh(x / 0.01)')
    """

    kind: str = "standardise"
    scale: float = 1.0
    low: float = 0.0
    high: float = 1.0
    why: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SpecError(f"transform: expected one of {', '.join(KINDS)}, got {self.kind!r}")
        for name in ("scale", "low", "high"):
            if not math.isfinite(getattr(self, name)):
                raise SpecError(f"transform {self.kind}: {name} must be finite, got {getattr(self, name)!r}")
        if self.kind == "asinh" and not self.scale > 0:
            raise SpecError(f"transform asinh: scale must be > 0, got {self.scale!r}")
        if self.kind == "logit" and not self.low < self.high:
            raise SpecError(f"transform logit: needs low < high, got low={self.low!r}, high={self.high!r}")

    @property
    def identity(self) -> bool:
        """The values reach the standardisation unchanged (``standardise`` or ``none``)."""
        return self.kind in ("standardise", "none")

    def describe(self) -> str:
        if self.kind == "asinh":
            return f"asinh(x / {self.scale:.3g})"
        if self.kind == "logit" and (self.low, self.high) != (0.0, 1.0):
            return f"logit on ({self.low:.6g}, {self.high:.6g})"
        return self.kind

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        if self.kind == "asinh":
            d["scale"] = self.scale
        if self.kind == "logit":
            d["low"], d["high"] = self.low, self.high
        if self.why:
            d["why"] = self.why
        return d

    @classmethod
    def from_json(cls, d: Any, what: str) -> "Transform":
        """A transform from its record (a model folder's data): kind from the fixed table, numbers checked."""
        if not isinstance(d, Mapping) or not isinstance(d.get("kind"), str):
            raise SpecError(f"{what}: a transform record needs a 'kind' string, got {d!r}")
        unknown = set(d) - {"kind", "scale", "low", "high", "why"}
        if unknown:
            raise SpecError(f"{what}: unknown transform field(s) {sorted(unknown)}")
        nums = {}
        for key in ("scale", "low", "high"):
            if key in d:
                value = d[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise SpecError(f"{what}: transform {key} must be a number, got {value!r}")
                nums[key] = float(value)
        why = d.get("why", "")
        try:
            return cls(d["kind"], why=str(why) if isinstance(why, str) else "", **nums)
        except SpecError as exc:
            raise SpecError(f"{what}: {exc}") from None


def parse_declared(name: str, value: Any) -> Transform:
    """A user's declaration for one variable: a name from :data:`KINDS` (or an alias), a dict with
    ``kind`` and parameters, or a :class:`Transform`."""
    if isinstance(value, Transform):
        return replace(value, why="declared")
    if isinstance(value, str):
        kind = ALIASES.get(value, value)
        if kind not in KINDS:
            raise SpecError(f"transform of variable {name!r}: expected one of {', '.join(KINDS)}, got {value!r}")
        return Transform(kind, why="declared")
    if isinstance(value, Mapping):
        d = dict(value)
        if isinstance(d.get("kind"), str):
            d["kind"] = ALIASES.get(d["kind"], d["kind"])
        t = Transform.from_json(d, f"transform of variable {name!r}")
        return replace(t, why="declared")
    raise SpecError(f"transform of variable {name!r}: expected a name ({', '.join(KINDS)}) or a dict with 'kind', "
                    f"got {type(value).__name__}")


def check_declared(spec: Spec, declared: Mapping[str, Any] | str | None) -> dict[str, Transform]:
    """The user's declared transforms, checked against ``spec``: a mapping ``{variable: kind}``, or one kind
    (a string) for every variable; ``None``: nothing declared.  An unknown variable or kind is a
    :class:`~phasm.errors.SpecError` naming it."""
    if declared is None or (isinstance(declared, str) and declared == "auto"):
        return {}
    names = [str(v.name) for v in spec.variables if v.is_input or v.is_output]
    if isinstance(declared, str):
        return {n: parse_declared(n, declared) for n in names}
    if not isinstance(declared, Mapping):
        raise SpecError(f"transforms: expected a dict {{variable: kind}} or one kind, got {type(declared).__name__}")
    out = {}
    for name, value in declared.items():
        if name not in names:
            raise SpecError(f"transforms: {spec.function} has no variable {name!r}; its variables are {names}")
        if isinstance(value, str) and value == "auto":
            continue
        out[str(name)] = parse_declared(str(name), value)
    return out


# -- the automatic choice ------------------------------------------------------------------------------


def _skew(a: np.ndarray) -> float:
    """Sample skewness (0 for a constant)."""
    d = a - a.mean()
    m2 = float(np.mean(d * d))
    return float(np.mean(d ** 3) / m2 ** 1.5) if m2 > 0 else 0.0


def _decades(ratio: float) -> float:
    return math.log10(ratio) if ratio > 0 and math.isfinite(ratio) else math.inf


def auto_transform(v: Variable, values: np.ndarray, *, output: bool) -> Transform:
    """The transform :data:`RULES` give a variable, from its captured values (any shape; every element counts)."""
    if v.dtype.kind in "biu":
        return Transform("standardise", why="integer or boolean")
    a = np.asarray(values, np.float64).reshape(-1)
    a = a[np.isfinite(a)]
    if len(a) < 2:
        return Transform("standardise", why="too few values to choose")
    lo, hi = float(a.min()), float(a.max())
    if lo > 0:
        decades = _decades(hi / lo)
        if decades > DECADES:
            s_lin, s_log = _skew(a), _skew(np.log(a))
            # Only when the values crowd the low end (the log is less skewed): x**2 of a uniform x reaches 0
            # too, and its log would be far harder to fit than the values.
            if abs(s_log) < abs(s_lin):
                return Transform("log", why=f"positive, spans {decades:.1f} decades ({lo:.3g} to {hi:.3g}); "
                                            f"skewness {s_lin:.2g}, of the log {s_log:.2g}")
    if output and 0 < lo and hi < 1:
        decades = _decades((1.0 - lo) / (1.0 - hi))
        if decades > DECADES:
            s_lin, s_logit = _skew(a), _skew(np.log(a) - np.log1p(-a))
            if abs(s_logit) < abs(s_lin):
                return Transform("logit", why=f"in (0, 1), 1 - x spans {decades:.1f} decades (max {hi:.6g}); "
                                              f"skewness {s_lin:.2g}, of the logit {s_logit:.2g}")
    if output and v.size == 1 and lo < 0 < hi:
        mag = np.abs(a[a != 0])
        if len(mag) >= 10:
            q10, q90 = float(np.quantile(mag, 0.1)), float(np.quantile(mag, 0.9))
            decades = _decades(q90 / q10) if q10 > 0 else math.inf
            if decades > DECADES and q10 > 0:
                scale = float(np.quantile(mag, 0.05))
                return Transform("asinh", scale=scale,
                                 why=f"both signs, magnitudes (10th to 90th percentile) span {decades:.1f} decades "
                                     f"(scale: 5th percentile {scale:.3g})")
    return Transform("standardise", why="")


def choose_transforms(spec: Spec, X: np.ndarray, Y: np.ndarray, declared: Mapping[str, Transform] | None = None,
                      *, auto: bool = True) -> dict[str, Transform]:
    """One transform per model variable: the declared ones, the rest chosen by :data:`RULES` from the captured
    training rows ``X (n, n_in)`` and ``Y (n, n_out)`` (raw, flat; a sample of them is enough).

    ``auto=False``: undeclared variables are standardised.  Declared transforms are checked against the data
    (``log`` of a non-positive value, ``logit`` outside its bounds: a :class:`~phasm.errors.SpecError`).
    """
    values: dict[str, np.ndarray] = {}
    for variables, M in ((spec.inputs, X), (spec.outputs, Y)):
        col = 0
        for v in variables:
            values.setdefault(str(v.name), np.asarray(M[:, col : col + v.size]))
            col += v.size
    return choose_for_values(spec, values, declared, auto=auto)


def choose_for_values(spec: Spec, values: Mapping[str, np.ndarray], declared: Mapping[str, Transform] | None = None,
                      *, auto: bool = True) -> dict[str, Transform]:
    """:func:`choose_transforms` from each variable's captured values (any shape: every element counts; for
    a variable-length input, its elements' values)."""
    declared = dict(declared or {})
    out: dict[str, Transform] = {}
    for v in spec.variables:
        name = str(v.name)
        if not (v.is_input or v.is_output) or name in out:
            continue
        block = values[name]
        if name in declared:
            t = declared[name]
            _check_fits(name, t, block)
        elif auto:
            t = auto_transform(v, block, output=v.is_output)
        else:
            t = Transform("standardise")
        out[name] = t
    return out


def _check_fits(name: str, t: Transform, values: np.ndarray) -> None:
    a = np.asarray(values, np.float64).reshape(-1)
    a = a[np.isfinite(a)]
    if not len(a):
        return
    if t.kind == "log" and a.min() <= 0:
        raise SpecError(f"transform 'log' of variable {name!r}: needs values > 0; the captures hold {a.min():.6g}")
    if t.kind == "logit" and not (a.min() > t.low and a.max() < t.high):
        raise SpecError(f"transform 'logit' of variable {name!r}: needs values in ({t.low:g}, {t.high:g}); "
                        f"the captures hold {a.min():.6g} to {a.max():.6g}")


def transforms_to_json(transforms: Mapping[str, Transform]) -> dict[str, Any]:
    return {name: t.to_json() for name, t in transforms.items()}


def transforms_from_json(d: Any, spec: Spec, what: str) -> dict[str, Transform]:
    """The transforms of a model folder's record, checked: a mapping from the spec's variables to records."""
    if d is None:
        return {}
    if not isinstance(d, Mapping):
        raise SpecError(f"{what}: the transforms record must be a mapping, got {type(d).__name__}")
    names = {str(v.name) for v in spec.variables}
    out = {}
    for name, rec in d.items():
        if name not in names:
            raise SpecError(f"{what}: a transform names {name!r}, which is not a variable of the spec")
        out[str(name)] = Transform.from_json(rec, f"{what}: transform of {name!r}")
    return out


# -- applying them to model rows ---------------------------------------------------------------------


class ColumnTransform:
    """The transforms of a model's input (or output) columns: one per column, from its variable's.

    ``forward`` maps raw rows to the scale the model learns on, ``inverse`` maps back;
    ``forward_block(block, start)`` transforms a block of columns ``start, start + 1, ...`` (the input
    layout hands set elements over this way).  ``derivative_inverse`` (the slope of ``inverse``) turns a
    predictive standard deviation into the caller's units.  ``identity``: every column passes unchanged.
    """

    def __init__(self, kinds: Sequence[Transform]) -> None:
        self.columns = tuple(kinds)
        self.identity = all(t.identity for t in self.columns)
        self.width = len(self.columns)
        # Columns grouped by transform, so a matrix is transformed in one pass per kind.
        groups: dict[Transform, list[int]] = {}
        for j, t in enumerate(self.columns):
            if not t.identity:
                groups.setdefault(replace(t, why=""), []).append(j)
        self._groups = [(t, np.asarray(cols, np.intp)) for t, cols in groups.items()]
        self.unstandardised = np.asarray([t.kind == "none" for t in self.columns], bool)

    @classmethod
    def for_variables(cls, variables: Sequence[Variable], transforms: Mapping[str, Transform]) -> "ColumnTransform":
        """Columns of ``variables`` (packed in order, ``size`` columns each) with their variables' transforms."""
        kinds: list[Transform] = []
        for v in variables:
            kinds.extend([transforms.get(str(v.name), Transform())] * v.size)
        return cls(kinds)

    @classmethod
    def for_layout(cls, variables: Sequence[Variable], transforms: Mapping[str, Transform]) -> "ColumnTransform":
        """Normalisation columns of an input layout: fixed variables first, then each set's element features."""
        fixed = [v for v in variables if not v.ragged]
        sets = [v for v in variables if v.ragged]
        return cls.for_variables([*fixed, *sets], transforms)

    def forward_block(self, block: np.ndarray, start: int = 0) -> np.ndarray:
        """Columns ``start ...`` of raw rows -> the model's scale (float32; a copy when anything changes)."""
        return self._apply(block, start, inverse=False)

    def forward(self, X: np.ndarray) -> np.ndarray:
        return self._apply(X, 0, inverse=False)

    def inverse(self, Z: np.ndarray) -> np.ndarray:
        """The model's scale -> raw values (float32)."""
        return self._apply(Z, 0, inverse=True)

    def derivative_inverse(self, Z: np.ndarray) -> np.ndarray:
        """``d inverse / d z`` at ``Z`` (the model's scale), per element: 1 for untransformed columns."""
        Z = np.asarray(Z, np.float64)
        D = np.ones_like(Z)
        with np.errstate(over="ignore", invalid="ignore"):
            for t, cols in self._groups:
                z = Z[..., cols]
                if t.kind == "log":
                    D[..., cols] = np.exp(z)
                elif t.kind == "asinh":
                    D[..., cols] = t.scale * np.cosh(z)
                elif t.kind == "logit":
                    s = 1.0 / (1.0 + np.exp(-z))
                    D[..., cols] = (t.high - t.low) * s * (1.0 - s)
        return D.astype(np.float32)

    def _apply(self, A: np.ndarray, start: int, *, inverse: bool) -> np.ndarray:
        A = np.asarray(A)
        if self.identity:
            return A if A.dtype == np.float32 else A.astype(np.float32)
        k = A.shape[-1]
        out = np.array(A, np.float32, copy=True)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for t, cols in self._groups:
                local = cols[(cols >= start) & (cols < start + k)] - start
                if not len(local):
                    continue
                x = out[..., local].astype(np.float64)
                out[..., local] = _inverse(t, x) if inverse else _forward(t, x)
        return out

    def to_json(self) -> list[dict[str, Any]]:
        return [t.to_json() for t in self.columns]


def _forward(t: Transform, x: np.ndarray) -> np.ndarray:
    if t.kind == "log":
        return np.log(np.where(x > 0, x, np.nan))  # a non-positive value has no log: NaN, never a finite answer
    if t.kind == "asinh":
        return np.arcsinh(x / t.scale)
    if t.kind == "logit":
        u = (x - t.low) / (t.high - t.low)
        u = np.where((u > 0) & (u < 1), u, np.nan)
        return np.log(u) - np.log1p(-u)
    return x


def _inverse(t: Transform, z: np.ndarray) -> np.ndarray:
    if t.kind == "log":
        return np.exp(z)
    if t.kind == "asinh":
        return np.sinh(z) * t.scale
    if t.kind == "logit":
        return t.low + (t.high - t.low) / (1.0 + np.exp(-z))
    return z
