"""Per-surrogate counters: calls, model answers, fallbacks, captures, time, shadow errors.

Example
-------
>>> SurrogateStats(calls=10, model_calls=9, model_rows=9, fallbacks=1).fallback_rate
0.1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SurrogateStats:
    """A snapshot of a surrogate's counters (rows, for batched functions).

    ``original`` mode counts calls only (it does nothing else, timing included).  ``gate``
    describes the trust gate ``auto`` mode uses; ``certified_bound`` is the miss-rate bound
    its calibration certified, ``None`` when no accuracy bound is certified; ``tolerance`` says
    whether the model was calibrated against a tolerance at all.
    """

    calls: int = 0
    rows: int = 0
    original_calls: int = 0
    model_calls: int = 0
    model_rows: int = 0
    fallbacks: int = 0
    captured_rows: int = 0
    time_original_s: float = 0.0
    time_model_s: float = 0.0
    shadow_rows: int = 0
    shadow_misses: int = 0
    shadow_error: dict[str, dict[str, float]] = field(default_factory=dict)
    gate: str = ""
    certified_bound: float | None = None
    tolerance: bool = False

    @property
    def fallback_rate(self) -> float:
        """Share of rows the model was asked for that went to the original function."""
        asked = self.model_rows + self.fallbacks
        return self.fallbacks / asked if asked else 0.0

    @property
    def observed_miss_rate(self) -> float | None:
        """Share of shadow-checked rows whose error exceeded the tolerance (None: none checked)."""
        return self.shadow_misses / self.shadow_rows if self.shadow_rows else None

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["fallback_rate"] = self.fallback_rate
        d["observed_miss_rate"] = self.observed_miss_rate
        return d

    def __str__(self) -> str:
        parts = [f"calls {self.calls}", f"original {self.original_calls}", f"model {self.model_calls}",
                 f"fallbacks {self.fallbacks} ({self.fallback_rate:.1%})", f"captured rows {self.captured_rows}",
                 f"time original {self.time_original_s:.4f} s", f"time model {self.time_model_s:.4f} s"]
        if self.shadow_rows:
            parts.append(f"shadow rows {self.shadow_rows}, misses {self.shadow_misses}")
        if self.model_rows or self.fallbacks:  # the model was asked: say what its answers are worth
            parts.append(f"certified miss-rate bound {self.certified_bound:.2%}" if self.certified_bound is not None
                         else "tolerance given but not certified: uncertified calls fall back" if self.tolerance
                         else "no accuracy bound certified (no tolerance)")
        return ", ".join(parts)
