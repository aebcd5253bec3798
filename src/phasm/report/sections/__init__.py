"""Section renderers: one module per section of the page.

Each module defines ``PART`` (the kind of collected item it draws: ``"surrogate"``, ``"profile"``
or ``"cost"``), ``ID`` (its anchor and ``data-section``), ``TITLE``, and ``render(item)``, which
returns the section's HTML body, or ``None`` when the item has nothing for it. Adding a section
is a new module here and its name below, in page order.
"""

from __future__ import annotations

from phasm.report.sections import (
    accuracy, candidates, cost, data, flame, gate, production, spec, stochastic, training,
)

SECTIONS = (spec, data, training, accuracy, gate, production, stochastic, flame, candidates, cost)

__all__ = ["SECTIONS"]
