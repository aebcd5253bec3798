"""The input space of a design of experiments: ranges, log-scaled ranges and fixed values.

A space maps argument names of the function to what they take:

- ``(low, high)``: a range, sampled uniformly;
- ``(low, high, "log")``: a range sampled uniformly in ``log`` (``0 < low``), for quantities
  spanning decades;
- anything else (a number, an array): a fixed value passed to every call.

Points are drawn in the unit cube (one axis per range, in the order given) and
mapped onto the ranges; fixed values are added when a call is made.

Example
-------
>>> import numpy as np
>>> space = Space({"T": (1000, 1500), "P": (1, 100, "log"), "phi": 1.0})
>>> space.names, space.fixed
(('T', 'P'), {'phi': 1.0})
>>> space.from_unit(np.array([[0.0, 0.5], [1.0, 1.0]])).round(6).tolist()
[[1000.0, 10.0], [1500.0, 100.0]]
>>> Space.from_strings(["T=1000:1500", "P=1:40:log", "phi=1.0"]).describe()
'T in [1000, 1500], P in [1, 40] (log), phi = 1.0'
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from phasm.errors import SampleError

SCALES = ("linear", "log")


@dataclass(frozen=True)
class Range:
    """One sampled input: ``low <= x <= high``, uniform on a linear or a log scale."""

    name: str
    low: float
    high: float
    scale: str = "linear"

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise SampleError(f"space: {self.name!r}: scale must be one of {SCALES}, got {self.scale!r}")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise SampleError(f"space: {self.name!r}: range bounds must be finite, got {self.low}:{self.high}")
        if not self.low < self.high:
            raise SampleError(f"space: {self.name!r}: expected low < high, got {self.low}:{self.high}")
        if self.scale == "log" and not self.low > 0:
            raise SampleError(f"space: {self.name!r}: a log range needs low > 0, got {self.low}")

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        u = np.clip(np.asarray(u, np.float64), 0.0, 1.0)
        if self.scale == "log":
            lo, hi = math.log(self.low), math.log(self.high)
            x = np.exp(lo + u * (hi - lo))
        else:
            x = self.low * (1.0 - u) + self.high * u  # no overflow for ranges as wide as the floats
        # Rounding must not step outside the range a user declared.
        return np.clip(x, self.low, self.high)

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.scale == "log":
            lo, hi = math.log(self.low), math.log(self.high)
            with np.errstate(divide="ignore", invalid="ignore"):
                return (np.log(x) - lo) / (hi - lo)
        return (x / 2 - self.low / 2) / (self.high / 2 - self.low / 2)

    def describe(self) -> str:
        return f"{self.name} in [{self.low:g}, {self.high:g}]" + (" (log)" if self.scale == "log" else "")


class Space:
    """Ranges and fixed values of a function's arguments (see the module docstring)."""

    def __init__(self, space: Mapping[str, Any]) -> None:
        if not isinstance(space, Mapping):
            raise SampleError(f"space: expected a dict of argument name -> range or value, got {type(space).__name__}")
        self.ranges: tuple[Range, ...] = ()
        self.fixed: dict[str, Any] = {}
        ranges = []
        for name, spec in space.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise SampleError(f"space: names must be argument names, got {name!r}")
            rng = _as_range(name, spec)
            if rng is not None:
                ranges.append(rng)
            else:
                self.fixed[name] = _as_fixed(name, spec)
        if not ranges:
            raise SampleError(f"space: no range to sample among {list(space)}; give at least one as (low, high)")
        self.ranges = tuple(ranges)

    @classmethod
    def from_strings(cls, items: Sequence[str]) -> "Space":
        """Parse ``NAME=LOW:HIGH``, ``NAME=LOW:HIGH:log`` and ``NAME=VALUE`` (a number or a JSON array)."""
        space: dict[str, Any] = {}
        for item in items:
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep or not name:
                raise SampleError(f"--space expects NAME=LOW:HIGH[:log] or NAME=VALUE, got {item!r}")
            if name in space:
                raise SampleError(f"--space {name!r} is given twice")
            parts = value.split(":")
            if len(parts) == 3 and parts[2] not in ("log", "linear", "lin"):
                raise SampleError(f"--space {name}: the scale after LOW:HIGH must be 'log' or 'linear', got {parts[2]!r}")
            try:
                if len(parts) in (2, 3):
                    space[name] = (float(parts[0]), float(parts[1])) + (("log",) if parts[2:] == ["log"] else ())
                elif len(parts) == 1:
                    space[name] = json.loads(value)
                else:
                    raise ValueError(value)
            except ValueError:  # float() and json.loads (JSONDecodeError is a ValueError)
                raise SampleError(f"--space {name}: expected LOW:HIGH[:log] or a number, got {value!r}") from None
        return cls(space)

    @property
    def names(self) -> tuple[str, ...]:
        """The sampled argument names, in the order of the design's columns."""
        return tuple(r.name for r in self.ranges)

    @property
    def dim(self) -> int:
        return len(self.ranges)

    def from_unit(self, U: np.ndarray) -> np.ndarray:
        """Unit-cube points ``(n, dim)`` -> argument values ``(n, dim)``."""
        U = np.asarray(U, np.float64)
        if U.ndim != 2 or U.shape[1] != self.dim:
            raise SampleError(f"space: expected unit points of shape (n, {self.dim}), got {U.shape}")
        return np.stack([r.from_unit(U[:, j]) for j, r in enumerate(self.ranges)], axis=1) if len(U) else U.copy()

    def to_unit(self, X: np.ndarray) -> np.ndarray:
        """Argument values ``(n, dim)`` -> unit-cube coordinates (the inverse of :meth:`from_unit`)."""
        X = np.asarray(X, np.float64)
        return np.stack([r.to_unit(X[:, j]) for j, r in enumerate(self.ranges)], axis=1) if len(X) else X.copy()

    def arguments(self, point: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """Keyword arguments of one call: the point's values (Python floats) and copies of the fixed values."""
        args: dict[str, Any] = {name: float(x) for name, x in zip(self.names, point)}
        for name, value in self.fixed.items():
            args[name] = value.copy() if isinstance(value, np.ndarray) else value
        return args

    def to_json(self) -> dict[str, Any]:
        return {
            "ranges": [{"name": r.name, "low": r.low, "high": r.high, "scale": r.scale} for r in self.ranges],
            "fixed": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.fixed.items()},
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Space":
        try:
            space: dict[str, Any] = {r["name"]: (float(r["low"]), float(r["high"]), str(r["scale"])) for r in d["ranges"]}
            for k, v in dict(d["fixed"]).items():
                space[str(k)] = np.asarray(v) if isinstance(v, list) else v
        except (KeyError, TypeError, ValueError) as exc:
            raise SampleError(f"space record is malformed: {exc}") from None
        return cls(space)

    def describe(self) -> str:
        parts = [r.describe() for r in self.ranges]
        parts += [f"{k} = {v!r}" if not isinstance(v, np.ndarray) else f"{k} = array{v.shape}" for k, v in self.fixed.items()]
        return ", ".join(parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and json.dumps(self.to_json(), sort_keys=True) == json.dumps(other.to_json(), sort_keys=True)

    def __repr__(self) -> str:
        return f"Space({self.describe()})"


def _as_range(name: str, spec: Any) -> Range | None:
    if not isinstance(spec, tuple):
        return None
    if len(spec) == 2:
        low, high, scale = spec[0], spec[1], "linear"
    elif len(spec) == 3 and isinstance(spec[2], str):
        low, high, scale = spec
    else:
        raise SampleError(f"space: {name!r}: a range is (low, high) or (low, high, 'log'), got {spec!r}")
    try:
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        raise SampleError(f"space: {name!r}: range bounds must be numbers, got {spec!r}") from None
    return Range(name, low, high, "linear" if scale in ("lin", "linear") else scale)


def _as_fixed(name: str, value: Any) -> Any:
    if isinstance(value, (bool, int, float, np.generic)):
        if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
            raise SampleError(f"space: fixed value {name!r} must be finite, got {value}")
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, (list, np.ndarray)):
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise SampleError(f"space: fixed value {name!r} must be numeric, got dtype {arr.dtype}")
        return arr
    raise SampleError(f"space: {name!r}: expected (low, high), (low, high, 'log'), a number or an array, "
                      f"got {type(value).__name__} {value!r}")
