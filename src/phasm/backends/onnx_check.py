"""Reading an ONNX file as data: parse, refuse anything that is not a plain standard-opset graph.

An ONNX file is a protobuf message: parsing it runs no code.  What could run code or
read other files is what the runtime does with it afterwards: operators from custom
domains (implemented by libraries a runtime may load), model-local functions,
training or preview domains, and tensors whose bytes live in *external data* files
named by a path in the model.  :func:`verify_model` refuses all of these except
external data files sitting in the model's own folder (a plain file name, a regular
file, not a link, the offset and length inside it), whose bytes it reads itself
and inlines, so the runtime is handed one self-contained model and never opens a
file.  Every operator must exist in the standard ``ai.onnx`` opset at the model's
declared version, and ``onnx.checker`` must accept the graph.

Example
-------
>>> from phasm.backends.onnx_graph import DenseNet, dense_graph
>>> import numpy as np
>>> net = DenseNet([("linear", np.ones((2, 3), np.float32), np.zeros(2, np.float32))])
>>> model, _ = dense_graph([net], n_in=3, n_out=2)
>>> verify_model(model.SerializeToString(), "net.onnx").graph.node[0].op_type
'Gemm'
>>> verify_model(b"\\x08\\x07garbage", "bad.onnx")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
phasm.errors.BackendError: bad.onnx: not a valid ONNX model: ...
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterator

import onnx
from onnx import TensorProto

from phasm.errors import BackendError

STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")  # the ONNX standard: core operators and its ML set
MAX_MODEL_BYTES = 2**31 - 1  # protobuf's own limit for one message
MIN_OPSET = 7


def verify_model(data: bytes, where: str | os.PathLike[str], *, folder: str | os.PathLike[str] | None = None,
                 max_bytes: int = MAX_MODEL_BYTES) -> onnx.ModelProto:
    """The parsed model, checked (see the module doc), with any external data inlined from ``folder``.

    ``folder``: where external data files may be (``None``: external data is refused).
    Raises :class:`~phasm.errors.BackendError` naming ``where`` and the reason.
    """
    where = str(where)
    if len(data) > max_bytes:
        raise BackendError(f"{where}: {len(data)} bytes, more than the {max_bytes} an ONNX model may have")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # google.protobuf.message.DecodeError and friends: the bytes are not a model
        raise BackendError(f"{where}: not a valid ONNX model: {type(exc).__name__}: {str(exc)[:200]} "
                           "(truncated or corrupted?)") from None
    if not model.HasField("graph") or not model.opset_import:
        raise BackendError(f"{where}: not a valid ONNX model: no graph or no opset (truncated or corrupted?)")
    opsets: dict[str, int] = {}
    for op in model.opset_import:
        if op.domain not in STANDARD_DOMAINS:
            raise BackendError(f"{where}: imports operator domain {op.domain!r}; only the standard ONNX opsets "
                               f"({', '.join(repr(d) for d in STANDARD_DOMAINS)}) are accepted (custom operators would "
                               "run code from outside the model)")
        opsets[_domain(op.domain)] = int(op.version)
    version = opsets.get("", 0)
    if not MIN_OPSET <= version <= onnx.defs.onnx_opset_version():
        raise BackendError(f"{where}: opset version {version} is outside {MIN_OPSET}..{onnx.defs.onnx_opset_version()} "
                           f"(the onnx package here knows up to {onnx.defs.onnx_opset_version()})")
    if len(model.functions):
        raise BackendError(f"{where}: defines {len(model.functions)} model-local function(s) "
                           f"({model.functions[0].domain}:{model.functions[0].name}); only standard operators are accepted")
    for graph in _graphs(model.graph):
        _check_text(graph, where)
        for node in graph.node:
            domain = _domain(node.domain) if node.domain in STANDARD_DOMAINS else None
            if domain is None or domain not in opsets:
                raise BackendError(f"{where}: node {node.name or node.op_type!r} uses operator {node.domain}:{node.op_type} "
                                   "from a domain the model does not import or a custom one; only standard ONNX "
                                   "operators are accepted")
            try:
                onnx.defs.get_schema(node.op_type, opsets[domain], domain)
            except onnx.defs.SchemaError:
                raise BackendError(f"{where}: operator {node.domain + ':' if node.domain else ''}{node.op_type} is not "
                                   f"in the standard opset {opsets[domain]}") from None
    for tensor in _tensors(model):
        if tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data):
            _inline_external(tensor, where, folder)
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as exc:
        raise BackendError(f"{where}: the ONNX checker refuses the model: {' '.join(str(exc).split())[:300]}") from None
    return model


def _check_text(graph: onnx.GraphProto, where: str) -> None:
    """Every name and operator of ``graph`` is text (protobuf hands invalid UTF-8 in a string field back as bytes)."""
    values = [graph.name, *(v.name for v in (*graph.input, *graph.output, *graph.initializer))]
    for node in graph.node:
        values += [node.op_type, node.domain, node.name, *node.input, *node.output]
    if not all(isinstance(v, str) for v in values):
        raise BackendError(f"{where}: a name or operator in the model is not valid UTF-8 text (corrupted?)")


def _domain(name: str) -> str:
    return "" if name == "ai.onnx" else name


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """``graph`` and every subgraph of control-flow nodes (If, Loop, Scan), depth first."""
    stack = [graph]
    while stack:
        g = stack.pop()
        yield g
        for node in g.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    stack.append(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    stack.extend(attr.graphs)


def _tensors(model: onnx.ModelProto) -> Iterator[TensorProto]:
    """Every tensor holding data: initializers, sparse initializers, and tensor attributes, in all graphs."""
    for g in _graphs(model.graph):
        yield from g.initializer
        for sparse in g.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in g.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    yield attr.t
                elif attr.type == onnx.AttributeProto.TENSORS:
                    yield from attr.tensors
                elif attr.type == onnx.AttributeProto.SPARSE_TENSOR:
                    yield attr.sparse_tensor.values
                    yield attr.sparse_tensor.indices


def _inline_external(tensor: TensorProto, where: str, folder: str | os.PathLike[str] | None) -> None:
    """Read a tensor's external data from a plain file in ``folder`` and store it in the tensor itself."""
    info = {e.key: e.value for e in tensor.external_data}
    if not all(isinstance(v, str) for kv in info.items() for v in kv):
        raise BackendError(f"{where}: an external data record of the model is not valid UTF-8 text (corrupted?)")
    location = info.get("location", "")
    if folder is None:
        raise BackendError(f"{where}: tensor {tensor.name!r} keeps its data in an external file ({location!r}); "
                           "not accepted here (save the model with its data inside)")
    if not location or Path(location).name != location or location in (".", "..") or "\\" in location \
            or "/" in location or "\x00" in location:
        raise BackendError(f"{where}: tensor {tensor.name!r} names external data {location!r}, not a plain file name "
                           "in the model's folder")
    path = Path(folder) / location
    try:
        st = os.lstat(path)
    except OSError:
        raise BackendError(f"{where}: external data file {location!r} of tensor {tensor.name!r} is missing") from None
    if not stat.S_ISREG(st.st_mode):
        raise BackendError(f"{where}: external data {location!r} of tensor {tensor.name!r} is not a regular file")
    try:
        offset, length = int(info.get("offset", "0")), int(info["length"]) if "length" in info else st.st_size - int(info.get("offset", "0"))
    except ValueError:
        raise BackendError(f"{where}: tensor {tensor.name!r} has a malformed external data offset/length") from None
    if offset < 0 or length < 0 or offset + length > st.st_size:
        raise BackendError(f"{where}: tensor {tensor.name!r} reads bytes {offset}..{offset + length} of {location!r}, "
                           f"which has {st.st_size}")
    with open(path, "rb") as f:
        f.seek(offset)
        blob = f.read(length)
    if len(blob) != length:
        raise BackendError(f"{where}: external data {location!r} changed while being read")
    del tensor.external_data[:]
    tensor.data_location = TensorProto.DEFAULT
    tensor.raw_data = blob
