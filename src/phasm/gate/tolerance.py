"""The user's tolerance: how wrong a model answer may be, and how often.

For one output variable ``v`` with true values ``t`` and model values ``p``
(the variable's elements, flattened), the answer is *within tolerance* when

    ||p - t||_2 <= rel_v * ||t||_2      or      max_i |p_i - t_i| <= abs_v

(whichever limits are set for ``v``; either passing is enough).  For a scalar
output this is exactly ``|p - t| <= max(abs_v, rel_v * |t|)``: a relative
error with an absolute floor, so a tolerance stays meaningful when the true
value is near zero (``rel=0.01, abs=1e-6``: 1% of the value, but never less
than 1e-6).  A call is within tolerance when every output variable is.
``max_miss_rate`` bounds the share of calls answered by the model that are out
of tolerance.

``rel`` and ``abs`` are each a number (every output), a mapping from output
name to number (only the outputs named), or ``None``.  ``per_output={"v":
(rel, abs)}`` overrides both for one output (the older spelling).  Each output
needs at least one limit; names are checked against the function's spec
before training (:meth:`Tolerance.check`).

Example
-------
>>> import numpy as np
>>> from phasm.bindings.spec import Scalar, Spec
>>> spec = Spec.from_declarations("m.f", {"x": Scalar()}, {"y": Scalar()})
>>> Tolerance(rel=0.01).misses(spec, np.array([[1.0], [1.0]]), np.array([[1.005], [1.1]])).tolist()
[False, True]
>>> Tolerance(rel=0.01, abs=1e-3).misses(spec, np.array([[0.0], [0.0]]), np.array([[5e-4], [2e-3]])).tolist()
[False, True]
>>> two = Spec.from_declarations("m.g", {"x": Scalar()}, {"tau": Scalar(), "x_out": Scalar()})
>>> tol = Tolerance(rel={"tau": 0.05}, abs={"x_out": 1e-3})
>>> tol.limits("tau"), tol.limits("x_out")
((0.05, None), (None, 0.001))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from phasm.bindings.spec import Spec
from phasm.errors import GateError

Limit = float | Mapping[str, float] | None


def _number(value: Any, what: str) -> float:
    """A finite number >= 0, or a one-line error naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise GateError(f"Tolerance: {what} must be a finite number >= 0, got {value!r} ({type(value).__name__})")
    v = float(value)
    if not (math.isfinite(v) and v >= 0):
        raise GateError(f"Tolerance: {what} must be a finite number >= 0, got {value!r}")
    return v


def _limit(value: Any, what: str) -> float | dict[str, float] | None:
    """Normalise ``rel=`` / ``abs=``: ``None``, a number, or a dict output name -> number."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        out: dict[str, float] = {}
        for name, v in value.items():
            if not isinstance(name, str) or not name:
                raise GateError(f"Tolerance: {what} keys must be output variable names, got {name!r}")
            out[name] = _number(v, f"{what} for output {name!r}")
        return out
    return _number(value, what)


@dataclass(frozen=True)
class Tolerance:
    """Error tolerance per call (per output variable) and the bound on the share of calls that may exceed it."""

    rel: Limit = 0.01
    abs: Limit = None
    max_miss_rate: float = 0.01
    per_output: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rel", _limit(self.rel, "rel"))
        object.__setattr__(self, "abs", _limit(self.abs, "abs"))
        per: dict[str, tuple[float | None, float | None]] = {}
        for name, pair in dict(self.per_output).items():
            if not isinstance(name, str) or not name:
                raise GateError(f"Tolerance: per_output keys must be output variable names, got {name!r}")
            try:
                r, a = pair
            except (TypeError, ValueError):
                raise GateError(f"Tolerance: per_output[{name!r}] must be a pair (rel, abs), got {pair!r}") from None
            r = None if r is None else _number(r, f"per_output[{name!r}] rel")
            a = None if a is None else _number(a, f"per_output[{name!r}] abs")
            if r is None and a is None:
                raise GateError(f"Tolerance: per_output[{name!r}] gives neither rel nor abs")
            per[name] = (r, a)
        object.__setattr__(self, "per_output", per)
        if not self._named() and self.rel is None and self.abs is None:
            raise GateError("Tolerance: give rel=, abs= or per_output= (a number, or a dict of output name -> number)")
        if isinstance(self.max_miss_rate, bool) or not isinstance(self.max_miss_rate, (int, float, np.floating)) \
                or not 0.0 <= float(self.max_miss_rate) < 1.0:
            raise GateError(f"Tolerance: max_miss_rate must be in [0, 1), got {self.max_miss_rate!r}")
        object.__setattr__(self, "max_miss_rate", float(self.max_miss_rate))

    def _named(self) -> set[str]:
        names = set(self.per_output)
        for lim in (self.rel, self.abs):
            if isinstance(lim, dict):
                names |= set(lim)
        return names

    def limits(self, name: str) -> tuple[float | None, float | None]:
        """``(rel, abs)`` for output variable ``name`` (``None``: that limit is not set)."""
        if name in self.per_output:
            return self.per_output[name]

        def one(lim: Any) -> float | None:
            return lim.get(name) if isinstance(lim, dict) else lim

        return one(self.rel), one(self.abs)

    def check(self, spec: Spec) -> "Tolerance":
        """Check the names against ``spec``'s outputs: every name known, every output given a limit.

        Returns ``self``; raises :class:`~phasm.errors.GateError` naming the variable otherwise.
        """
        outputs = [str(v.name) for v in spec.outputs]
        for name in sorted(self._named()):
            if name not in outputs:
                raise GateError(f"Tolerance: output {name!r} is not an output of {spec.function} "
                                f"(outputs: {', '.join(outputs)})")
        for name in outputs:
            if self.limits(name) == (None, None):
                raise GateError(f"Tolerance: output {name!r} of {spec.function} has no tolerance; "
                                f"give rel= or abs= for it (e.g. rel={{{name!r}: 0.01}})")
        return self

    def variable_errors(self, spec: Spec, Y_true: np.ndarray, Y_pred: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per output variable: (relative L2 error, max abs element error) per row."""
        out = {}
        col = 0
        n = len(Y_true)
        for v in spec.outputs:
            t = np.asarray(Y_true[:, col : col + v.size], np.float64).reshape(n, -1)
            p = np.asarray(Y_pred[:, col : col + v.size], np.float64).reshape(n, -1)
            col += v.size
            diff = p - t
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.linalg.norm(diff, axis=1) / np.linalg.norm(t, axis=1)
            rel = np.where(np.linalg.norm(diff, axis=1) == 0, 0.0, rel)
            out[v.name] = (np.nan_to_num(rel, nan=np.inf), np.nan_to_num(np.abs(diff).max(axis=1, initial=0.0), nan=np.inf))
        return out  # type: ignore[return-value]

    def error_ratio(self, spec: Spec, E: np.ndarray, Y_ref: np.ndarray) -> np.ndarray:
        """Per row, the largest over outputs of ``||E_v|| / max(rel_v * ||Y_ref_v||, abs_v)``: an error
        (or an uncertainty) ``E (n, n_out)`` in units of what the tolerance allows at ``Y_ref``."""
        n = Y_ref.shape[0]
        out = np.zeros(n)
        col = 0
        for v in spec.outputs:
            if v.size == 1:
                e = np.abs(E[:, col].astype(np.float64))
                y = np.abs(Y_ref[:, col].astype(np.float64))
            else:
                e = np.linalg.norm(E[:, col : col + v.size].astype(np.float64), axis=1)
                y = np.linalg.norm(Y_ref[:, col : col + v.size].astype(np.float64), axis=1)
            col += v.size
            rel, mabs = self.limits(str(v.name))
            allowed = np.zeros(n)
            if rel is not None:
                allowed = np.maximum(allowed, rel * y)
            if mabs is not None:
                allowed = np.maximum(allowed, mabs)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(e == 0, 0.0, e / allowed)
            out = np.maximum(out, np.nan_to_num(ratio, nan=np.inf))
        return out

    def misses(self, spec: Spec, Y_true: np.ndarray, Y_pred: np.ndarray) -> np.ndarray:
        """Boolean ``(n,)``: rows where any output is out of tolerance."""
        miss = np.zeros(len(Y_true), bool)
        for name, (rel, mabs) in self.variable_errors(spec, Y_true, Y_pred).items():
            r_lim, a_lim = self.limits(name)
            ok = np.zeros(len(Y_true), bool)
            if r_lim is not None:
                ok |= rel <= r_lim
            if a_lim is not None:
                ok |= mabs <= a_lim
            miss |= ~ok
        return miss

    def describe(self) -> str:
        """One line: the limits as given."""
        parts = [f"{k}={v!r}" for k, v in (("rel", self.rel), ("abs", self.abs)) if v is not None]
        parts += [f"per_output={self.per_output!r}"] if self.per_output else []
        return f"Tolerance({', '.join(parts)}, max_miss_rate={self.max_miss_rate:g})"

    def to_json(self) -> dict[str, Any]:
        return {"rel": self.rel, "abs": self.abs, "max_miss_rate": self.max_miss_rate,
                "per_output": {k: list(v) for k, v in self.per_output.items()}}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Tolerance":
        """Rebuild from :meth:`to_json` (numbers or dicts for ``rel``/``abs``; every value re-validated)."""
        if not isinstance(d, dict):
            raise GateError(f"tolerance record must be an object, got {type(d).__name__}")
        per = d.get("per_output") or {}
        if not isinstance(per, dict):
            raise GateError(f"tolerance record: per_output must be an object, got {type(per).__name__}")
        return cls(d.get("rel"), d.get("abs"), d.get("max_miss_rate", 0.01),
                   {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in per.items()})
