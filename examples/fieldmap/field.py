"""The field look-up a detector program calls, wrapped by phasm: one point, or a batch of points.

The map (:class:`magnet.FieldMap`, Biot-Savart tabulated on a ``SPACING`` mesh)
is built on first import and kept in ``CACHE`` (a few seconds to a minute,
then instant).  Two entry points share one spec, so one model serves both:

* :func:`field` -- ``(x, y, z)`` in metres -> ``B (3,)`` in tesla, one point,
  trilinear in plain float arithmetic (the way a stepper asks, point by point);
* :func:`field_batch` -- ``x, y, z`` arrays ``(n,)`` -> ``(n, 3)``, vectorised numpy
  (``batched=True``).

Environment: ``FIELDMAP_SPACING`` (metres, default 0.02), ``FIELDMAP_CACHE``
(default ``demo-output/.cache``), ``FIELDMAP_STORE`` (capture store path),
``FIELDMAP_TOL`` / ``FIELDMAP_MISS``: the relative error ``|dB| / |B|`` allowed
per call and the share of trusted calls that may exceed it; when set,
training holds out captures to certify the trust gate.

Example
-------
>>> import field                                   # doctest: +SKIP
>>> field.field(0.1, 0.0, 0.5)                     # doctest: +SKIP
array([ 0.00...,  0.00...,  1.9...])
"""

from __future__ import annotations

import os

import numpy as np

import phasm
from magnet import FieldMap

SPACING = float(os.environ.get("FIELDMAP_SPACING", "0.02"))
CACHE = os.environ.get("FIELDMAP_CACHE", "demo-output/.cache")
STORE = os.environ.get("FIELDMAP_STORE") or None
TOLERANCE = (phasm.Tolerance(rel=float(os.environ["FIELDMAP_TOL"]), max_miss_rate=float(os.environ.get("FIELDMAP_MISS", "0.01")))
             if os.environ.get("FIELDMAP_TOL") else None)

MAP = FieldMap.cached(SPACING, CACHE)

DECLARATIONS = dict(inputs={"x": phasm.Scalar(), "y": phasm.Scalar(), "z": phasm.Scalar()},
                    outputs={"B": phasm.Array((3,))})


@phasm.surrogate(**DECLARATIONS, store=STORE, tolerance=TOLERANCE, name="fieldmap.field")
def field(x: float, y: float, z: float) -> np.ndarray:
    """The field (tesla) at one point (metres): trilinear interpolation in the map."""
    return np.array(MAP.lookup_one(x, y, z))


@phasm.surrogate(**DECLARATIONS, batched=True, store=STORE, tolerance=TOLERANCE, name="fieldmap.field_batch")
def field_batch(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The field ``(n, 3)`` at ``n`` points given as three ``(n,)`` arrays."""
    return MAP.lookup(np.stack([x, y, z], 1))
