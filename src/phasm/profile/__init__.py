"""phasm.profile: find the function worth replacing, and predict what replacing it buys.

Layers (pyinstrument style): samplers (``sampler_inprocess``, ``sampler_pyspy``,
``record``) produce a :class:`Session` (``session``); ``ranking`` turns it into
candidates with Amdahl/Gustafson figures; renderers (``render_folded``,
``render_speedscope``, ``render_svg``) draw it; ``costmodel`` measures a
surrogate's effective speed ``s_eff`` for the ranking to use.

Example
-------
>>> from phasm.profile import record, rank, write_outputs       # doctest: +SKIP
>>> session = record(["python", "sim.py"], rate_hz=100)          # doctest: +SKIP
>>> ranking = rank(session, root="sim:event_loop", speed=20)     # doctest: +SKIP
>>> write_outputs(session, ranking, "phasm-profile/")            # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "Session": "phasm.profile.session", "Frame": "phasm.profile.session",
    "InProcessSampler": "phasm.profile.sampler_inprocess",
    "record": "phasm.profile.record",
    "rank": "phasm.profile.ranking", "Ranking": "phasm.profile.ranking", "Candidate": "phasm.profile.ranking",
    "amdahl": "phasm.profile.ranking", "gustafson": "phasm.profile.ranking",
    "write_outputs": "phasm.profile.outputs",
    "CostModel": "phasm.profile.costmodel", "measure_cost": "phasm.profile.costmodel",
    "load_costs": "phasm.profile.costmodel",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'phasm.profile' has no attribute {name!r}")
