"""Models trained elsewhere over variable-length inputs: a ``torch.export`` program on a ragged spec.

:func:`phasm.train.exported.load_exported` hands specs with ragged inputs
(``phasm.each(...)``) here.  The program takes the encoded layout of
:mod:`phasm.backends.torch_ragged_export` (fixed inputs, then per set
``max_len`` padded elements and a mask) and returns ``(batch,
n_out_features)``.  ``max_len`` is the sets' declared ``max_len`` (the largest
if they differ), or the argument.  Normalisation works as for flat programs:
the identity unless ``x_mean/x_scale`` (``spec.n_in_features`` entries: the
fixed inputs, then each set's element features) or ``y_mean/y_scale`` are given.

Example
-------
>>> art = load_exported_ragged("lstm.pt2", fit_track.spec)   # doctest: +SKIP
>>> fit_track.load_exported("lstm.pt2")                      # the same, attached to the wrapper  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from phasm.bindings.spec import Spec
from phasm.errors import SpecError
from phasm.train.artefact import ModelArtefact
from phasm.train.data import Standardiser


def _norm(mean: Any, scale: Any, size: int, what: str) -> Standardiser:
    m = np.zeros(size, np.float32) if mean is None else np.broadcast_to(np.asarray(mean, np.float32), (size,)).copy()
    s = np.ones(size, np.float32) if scale is None else np.broadcast_to(np.asarray(scale, np.float32), (size,)).copy()
    return Standardiser.from_json({"mean": m.tolist(), "scale": s.tolist()}, size, what)


def ragged_max_len(spec: Spec, max_len: int | None = None) -> int:
    """The padded length the program takes: ``max_len`` if given, else the largest declared ``max_len`` of the sets."""
    sets = [v for v in spec.inputs if v.ragged]
    if not sets:
        raise SpecError(f"{spec.function}: no variable-length inputs; use phasm.train.exported.load_exported")
    if max_len is not None:
        if int(max_len) < 1:
            raise ValueError(f"load_exported: max_len must be >= 1, got {max_len}")
        return int(max_len)
    missing = [v.name for v in sets if v.meta.get("max_len") is None]
    if missing:
        raise SpecError(f"{spec.function}: variable-length input(s) {missing} declare no max_len; declare "
                        "phasm.each(..., max_len=M) or pass load_exported(..., max_len=M), the length the program was exported for")
    return max(int(v.meta["max_len"]) for v in sets)


def load_exported_ragged(
    path: str | os.PathLike[str],
    spec: Spec,
    *,
    max_len: int | None = None,
    x_mean: Any = None,
    x_scale: Any = None,
    y_mean: Any = None,
    y_scale: Any = None,
    device: str | None = None,
) -> ModelArtefact:
    """A :class:`ModelArtefact` around an exported program over ``spec``'s variable-length inputs."""
    from phasm.backends.torch_ragged_export import TorchRaggedExportBackend

    L = ragged_max_len(spec, max_len)
    fixed = [v for v in spec.inputs if not v.ragged]
    sets = [v for v in spec.inputs if v.ragged]
    backend = TorchRaggedExportBackend.from_program_file(
        path, n_fixed=sum(v.size for v in fixed), set_names=[str(v.name) for v in sets],
        set_dims=[int(math.prod(v.shape)) for v in sets], n_out=spec.n_out_features, max_len=L, device=device)
    return ModelArtefact(
        spec, backend,
        _norm(x_mean, x_scale, spec.n_in_features, "input"),
        _norm(y_mean, y_scale, spec.n_out_features, "output"),
        training={"source": os.fspath(path), "trained": "elsewhere (torch.export program over variable-length inputs)",
                  "max_len": L},
    )
