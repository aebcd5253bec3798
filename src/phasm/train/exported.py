"""Models trained elsewhere: wrap a ``torch.export`` program (``.pt2``) or an ONNX file as a model artefact.

The exported program maps a ``(batch, n_in)`` float32 tensor to ``(batch,
n_out)``, with the spec's feature order (``phasm.bindings.spec.pack``).  By
default it is taken to work in the user's units (no standardisation); give
``x_mean/x_scale/y_mean/y_scale`` if it was trained on standardised data.
Export it with a dynamic batch axis (``torch.export.Dim("batch")``;
``torch.export`` needs an example batch of at least 2 rows for that).

An ONNX file goes through :func:`load_onnx` (verified as data, served by onnxruntime).

Example
-------
>>> art = load_exported("price.pt2", price.spec)   # doctest: +SKIP
>>> price.load_exported("price.pt2")               # the same, attached to the wrapper  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from phasm.bindings.spec import Spec
from phasm.train.artefact import ModelArtefact
from phasm.train.data import Standardiser


def _norm(mean: Any, scale: Any, size: int, what: str) -> Standardiser:
    m = np.zeros(size, np.float32) if mean is None else np.broadcast_to(np.asarray(mean, np.float32), (size,)).copy()
    s = np.ones(size, np.float32) if scale is None else np.broadcast_to(np.asarray(scale, np.float32), (size,)).copy()
    return Standardiser.from_json({"mean": m.tolist(), "scale": s.tolist()}, size, what)


def load_exported(
    path: str | os.PathLike[str],
    spec: Spec,
    *,
    x_mean: Any = None,
    x_scale: Any = None,
    y_mean: Any = None,
    y_scale: Any = None,
    device: str | None = None,
    max_len: int | None = None,
) -> ModelArtefact:
    """A :class:`ModelArtefact` around the exported program at ``path``, checked against ``spec``'s widths.

    The artefact saves like any other (the ``.pt2`` is copied into the model
    folder and checksummed), so ``fn.save`` / ``phasm info`` work on it.
    A spec with variable-length inputs takes a program over padded sets
    (``max_len``: see :mod:`phasm.train.exported_ragged`).
    """
    from phasm.backends.torch_mlp import TorchBackend

    if spec is None:
        raise ValueError("load_exported: the function's spec is needed to check the model's input and output widths")
    if any(v.ragged for v in spec.inputs):
        from phasm.train.exported_ragged import load_exported_ragged

        return load_exported_ragged(path, spec, max_len=max_len, x_mean=x_mean, x_scale=x_scale, y_mean=y_mean,
                                    y_scale=y_scale, device=device)
    backend = TorchBackend.from_program_file(path, spec.n_in_features, spec.n_out_features, device=device)
    art = ModelArtefact(
        spec, backend,
        _norm(x_mean, x_scale, spec.n_in_features, "input"),
        _norm(y_mean, y_scale, spec.n_out_features, "output"),
        training={"source": os.fspath(path), "trained": "elsewhere (torch.export program)"},
    )
    return art


def load_onnx(
    path: str | os.PathLike[str],
    spec: Spec,
    *,
    x_mean: Any = None,
    x_scale: Any = None,
    y_mean: Any = None,
    y_scale: Any = None,
    members: bool = False,
    sha256: str | None = None,
    serve_threads: int = 1,
    serve_device: str | None = None,
) -> ModelArtefact:
    """A :class:`ModelArtefact` around an ONNX file made elsewhere, verified as data against ``spec``.

    The model takes one float32 input ``(batch, n_in_features)`` in the spec's feature order and
    returns ``(batch, n_out_features)`` first (``members=True``: then ``(members, batch, n_out)``, an
    ensemble the trust gate can use).  Units and normalisation as for :func:`load_exported`.
    The file is parsed as data and refused if it uses custom operator domains, model-local
    functions, or external data outside its own folder; ``sha256`` pins its exact bytes.
    Saving the artefact copies the graph (external data inlined) into the model folder.

    Example
    -------
    >>> art = load_onnx("price.onnx", price.spec, sha256="9f2c...")   # doctest: +SKIP
    >>> art.save("models/price"); price.load("models/price")          # doctest: +SKIP
    """
    import hashlib

    from phasm.backends.onnx_backend import OnnxBackend
    from phasm.errors import ArtefactError

    if spec is None:
        raise ValueError("load_onnx: the function's spec is needed to check the model's input and output widths")
    if any(v.ragged for v in spec.inputs):
        raise ValueError(f"load_onnx: {spec.function} has variable-length inputs; an ONNX file made elsewhere is "
                         "loaded for fixed-width inputs only")
    try:
        data = open(path, "rb").read()
    except OSError as exc:
        raise ArtefactError(f"{path}: cannot read the ONNX file: {exc.strerror or exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != str(sha256).lower():
        raise ArtefactError(f"{path}: sha256 {digest[:12]}... is not the expected {str(sha256)[:12]}... "
                            "(a different or corrupted file)")
    backend = OnnxBackend.from_file(path, spec.n_in_features, spec.n_out_features, members=members,
                                    serve_threads=serve_threads, serve_device=serve_device, data=data)
    art = ModelArtefact(
        spec, backend,
        _norm(x_mean, x_scale, spec.n_in_features, "input"),
        _norm(y_mean, y_scale, spec.n_out_features, "output"),
        training={"source": os.fspath(path), "sha256": digest, "trained": "elsewhere (ONNX file)"},
    )
    art._check_runs()
    return art
