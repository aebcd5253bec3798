"""ONNX graphs of the networks the torch backends train, built node by node from their weights.

The graphs are written with ``onnx.helper`` from the weights alone (no tracing, no
exporter): the default MLP (with or without its linear skip path and column
selection), ensembles of such MLPs (one graph, outputs ``y`` = the members' mean
and ``members`` ``(k, n, n_out)``), and the DeepSets network of ``torch-sets``.
A graph maps standardised rows to standardised outputs, like the backend it came
from; :func:`fold_affine` turns it into a raw -> raw graph with the
standardisation folded into the first and last layers' weights where that is
exact enough, and as ``Sub``/``Div`` and ``Mul``/``Add`` nodes elsewhere.  Each
graph comes with a *fold recipe* (JSON): which weights take the input and output
maps, or which tensors the maps are inserted on.

Only standard ``ai.onnx`` operators are used (opset :data:`OPSET`).

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> net = DenseNet([("linear", rng.normal(size=(8, 3)).astype(np.float32), np.zeros(8, np.float32)),
...                 ("act", "tanh"), ("linear", rng.normal(size=(1, 8)).astype(np.float32), np.zeros(1, np.float32))])
>>> model, recipe = dense_graph([net], n_in=3, n_out=1)
>>> [n.op_type for n in model.graph.node], recipe["input"][0]["weight"]
(['Gemm', 'Tanh', 'Gemm'], 'm0.l0.weight')
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from phasm.backends.torch_describe import ACTIVATION_NAMES, DenseNet, activation_name, describe_mlp
from phasm.errors import BackendError, NotDescribable

OPSET = 17
IR_VERSION = 8  # what onnxruntime >= 1.14 reads; opset 17 needs IR >= 8
INPUT, OUTPUT, MEMBERS = "x", "y", "members"
FOLD_MAX_OFFSET = 16.0  # |mean / scale| above this: standardise with nodes, not in the weights (float32 digits)


@dataclass
class SetNetDesc:
    """The ``torch-sets`` network as arrays: per set a ``phi`` MLP (then ``activation``), pooling, ``rho``."""

    n_fixed: int
    set_dims: list[int]
    phis: list[DenseNet]
    rho: DenseNet
    activation: str


def describe_torch_mlp(module: Any) -> DenseNet | None:
    """The :class:`DenseNet` of a module built by ``build_mlp`` (optionally behind ``SelectColumns``); else ``None``."""
    try:
        return describe_mlp(module)
    except NotDescribable:
        return None


def describe_setnet(module: Any, activation: str) -> SetNetDesc | None:
    """The :class:`SetNetDesc` of a ``torch-sets`` ``SetNet``; ``None`` if a part is not a plain MLP."""
    phis = []
    for phi in module.phis:
        net = describe_torch_mlp(phi[0])
        if net is None or net.select is not None or net.skip is not None or _activation_or_none(phi[1]) != activation:
            return None
        phis.append(net)
    rho = describe_torch_mlp(module.rho)
    if rho is None or rho.select is not None or rho.skip is not None:
        return None
    return SetNetDesc(int(module.n_fixed), [int(k) for k in module.set_dims], phis, rho, activation)


def _activation_or_none(layer: Any) -> str | None:
    try:
        return activation_name(layer)
    except NotDescribable:
        return None


class GraphBuilder:
    """Collects nodes and initializers under unique names; :meth:`model` wraps them in a ``ModelProto``."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._names: set[str] = set()

    def name(self, hint: str) -> str:
        name, i = hint, 1
        while name in self._names:
            name, i = f"{hint}_{i}", i + 1
        self._names.add(name)
        return name

    def const(self, value: Any, hint: str, dtype: Any = np.float32) -> str:
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(np.asarray(value, dtype)), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], hint: str, *, out: str | None = None, **attrs: Any) -> str:
        output = out if out is not None else self.name(hint)
        if out is not None:
            self._names.add(out)
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=self.name(f"{hint}.node"), **attrs))
        return output

    def rename(self, old: str, new: str) -> None:
        """Call tensor ``old`` ``new`` everywhere (the last node's output becomes the graph output)."""
        self._names.add(new)
        for node in self.nodes:
            for seq in (node.input, node.output):
                for i, name in enumerate(seq):
                    if name == old:
                        seq[i] = new

    def activation(self, x: str, name: str, hint: str) -> str:
        if name == "relu":
            return self.op("Relu", [x], hint)
        if name == "tanh":
            return self.op("Tanh", [x], hint)
        if name == "elu":
            return self.op("Elu", [x], hint, alpha=1.0)
        if name == "softplus":
            return self.op("Softplus", [x], hint)
        if name == "silu":
            return self.op("Mul", [x, self.op("Sigmoid", [x], f"{hint}.sigmoid")], hint)
        if name == "gelu":  # 0.5 x (1 + erf(x / sqrt 2)): the exact GELU (onnxruntime fuses it)
            erf = self.op("Erf", [self.op("Div", [x, self.const(np.sqrt(2.0), f"{hint}.sqrt2")], f"{hint}.scaled")], f"{hint}.erf")
            one_plus = self.op("Add", [erf, self.const(1.0, f"{hint}.one")], f"{hint}.onep")
            return self.op("Mul", [self.op("Mul", [x, one_plus], f"{hint}.xmul"), self.const(0.5, f"{hint}.half")], hint)
        raise BackendError(f"onnx: activation {name!r} has no ONNX form here; supported: {', '.join(ACTIVATION_NAMES)}")

    def model(self, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto], doc: str = "") -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, "phasm", inputs, outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="phasm",
                                  doc_string=doc)
        model.ir_version = IR_VERSION
        return model


def _dense(b: GraphBuilder, x: str, net: DenseNet, prefix: str, recipe: dict[str, list], *, rank3: bool = False,
           fold_in: bool = True, fold_out: bool = True) -> str:
    """Nodes of one MLP on ``x``; records its first/last weights in ``recipe``."""
    if net.select is not None:
        cols = b.const(net.select, f"{prefix}.select", np.int64)
        x = b.op("Gather", [x, cols], f"{prefix}.selected", axis=1)
    else:
        cols = None
    linears = [i for i, layer in enumerate(net.layers) if layer[0] == "linear"]
    h = x
    for i, layer in enumerate(net.layers):
        if layer[0] == "act":
            h = b.activation(h, layer[1], f"{prefix}.l{i}.act")
            continue
        w, bias = layer[1], layer[2]
        bn = b.const(bias, f"{prefix}.l{i}.bias")
        if rank3:  # (n, L, k) rows of a set: MatMul by W^T (Gemm is 2-D only)
            wt = b.const(np.ascontiguousarray(w.T), f"{prefix}.l{i}.weight_t")
            h = b.op("Add", [b.op("MatMul", [h, wt], f"{prefix}.l{i}.matmul"), bn], f"{prefix}.l{i}")
            continue
        wn = b.const(w, f"{prefix}.l{i}.weight")
        h = b.op("Gemm", [h, wn, bn], f"{prefix}.l{i}", transB=1)
        if i == linears[0] and fold_in:
            recipe["input"].append({"weight": wn, "bias": bn, "columns": cols})
        if i == linears[-1] and fold_out:
            recipe["output"].append({"weight": wn, "bias": bn, "offset": True})
    if net.skip is not None:
        w, bias = net.skip
        wn, bn = b.const(w, f"{prefix}.skip.weight"), b.const(bias, f"{prefix}.skip.bias")
        lin = b.op("Gemm", [x, wn, bn], f"{prefix}.skip", transB=1)
        if fold_in:
            recipe["input"].append({"weight": wn, "bias": bn, "columns": cols})
        if fold_out:
            recipe["output"].append({"weight": wn, "bias": bn, "offset": False})
        h = b.op("Add", [lin, h], f"{prefix}.sum")
    return h


def _io(name: str, dims: list[Any]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def dense_graph(members: list[DenseNet], n_in: int, n_out: int) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """One MLP (``y``) or an ensemble of them (``y``: the mean; ``members``: ``(k, n, n_out)``)."""
    if not members:
        raise BackendError("onnx: no network to build")
    b = GraphBuilder()
    recipe: dict[str, list] = {"input": [], "output": []}
    outputs = [_dense(b, INPUT, net, f"m{i}", recipe) for i, net in enumerate(members)]
    if len(members) == 1:
        b.rename(outputs[0], OUTPUT)
        return b.model([_io(INPUT, ["n", n_in])], [_io(OUTPUT, ["n", n_out])]), recipe
    axis0 = b.const([0], "axis0", np.int64)
    stacked = [b.op("Unsqueeze", [o, axis0], f"m{i}.row") for i, o in enumerate(outputs)]
    b.op("Concat", stacked, "members", out=MEMBERS, axis=0)
    b.op("ReduceMean", [MEMBERS], "mean", out=OUTPUT, axes=[0], keepdims=0)
    return b.model([_io(INPUT, ["n", n_in])], [_io(OUTPUT, ["n", n_out]), _io(MEMBERS, [len(members), "n", n_out])]), recipe


def set_graph(desc: SetNetDesc, n_out: int) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """The DeepSets network on encoded rows ``fixed | per set (L*k values, L mask)`` (``phasm.bindings.ragged.encode``)."""
    b = GraphBuilder()
    recipe: dict[str, list] = {"input": [], "output": []}
    i64 = np.int64
    nf, per_slot = desc.n_fixed, sum(k + 1 for k in desc.set_dims)
    one, zero_f, axis1, axis2 = b.const([1], "one", i64), b.const(0.0, "zero"), b.const([1], "axis1", i64), b.const([2], "axis2", i64)
    fixed = b.op("Slice", [INPUT, b.const([0], "c0", i64), b.const([nf], "nf", i64), axis1], "fixed")
    recipe["input"].append({"tensor": fixed, "start": 0, "stop": nf})
    width = b.op("Slice", [b.op("Shape", [INPUT], "shape"), one, b.const([2], "c2", i64)], "width")
    L = b.op("Div", [b.op("Sub", [width, b.const([nf], "nf_", i64)], "set_cols"), b.const([per_slot], "per_slot", i64)], "L")
    feats, slot, col = [fixed], 0, nf
    for i, (k, phi) in enumerate(zip(desc.set_dims, desc.phis)):
        start = b.op("Add", [b.const([nf], f"s{i}.nf", i64), b.op("Mul", [L, b.const([slot], f"s{i}.slot", i64)], f"s{i}.off")], f"s{i}.start")
        mid = b.op("Add", [start, b.op("Mul", [L, b.const([k], f"s{i}.k", i64)], f"s{i}.len")], f"s{i}.mid")
        end = b.op("Add", [mid, L], f"s{i}.end")
        flat = b.op("Slice", [INPUT, start, mid, axis1], f"s{i}.flat")
        shape = b.op("Concat", [b.const([0], f"s{i}.keep_n", i64), L, b.const([k], f"s{i}.kdim", i64)], f"s{i}.shape", axis=0)
        vals = b.op("Reshape", [flat, shape], f"s{i}.values")
        recipe["input"].append({"tensor": vals, "start": col, "stop": col + k})
        mask = b.op("Unsqueeze", [b.op("Slice", [INPUT, mid, end, axis1], f"s{i}.mask2"), axis2], f"s{i}.mask")
        h = b.activation(_dense(b, vals, phi, f"s{i}.phi", {"input": [], "output": []}, rank3=True), desc.activation, f"s{i}.emb")
        count = b.op("ReduceSum", [mask, axis1], f"s{i}.count", keepdims=0)
        total = b.op("ReduceSum", [b.op("Mul", [h, mask], f"s{i}.masked"), axis1], f"s{i}.total", keepdims=0)
        mean = b.op("Div", [total, b.op("Max", [count, b.const(1.0, f"s{i}.one_f")], f"s{i}.den")], f"s{i}.mean")
        present = b.op("Greater", [mask, zero_f], f"s{i}.present")
        filled = b.op("Where", [present, h, b.const(-1e4, f"s{i}.low")], f"s{i}.filled")
        mx = b.op("ReduceMax", [filled], f"s{i}.max0", axes=[1], keepdims=0)
        mx = b.op("Where", [b.op("Greater", [count, zero_f], f"s{i}.nonempty"), mx, zero_f], f"s{i}.max")
        logc = b.op("Log", [b.op("Add", [count, b.const(1.0, f"s{i}.one_c")], f"s{i}.count1")], f"s{i}.logc")
        feats += [mean, mx, logc]
        slot += k + 1
        col += k
    pooled = b.op("Concat", feats, "features", axis=1)
    b.rename(_dense(b, pooled, desc.rho, "rho", recipe, fold_in=False), OUTPUT)
    return b.model([_io(INPUT, ["n", "cols"])], [_io(OUTPUT, ["n", n_out])]), recipe


# -- folding the standardisation ---------------------------------------------------------------


@dataclass
class Normalisation:
    """Raw -> network -> raw maps: ``z = (x - x_mean) / x_scale`` in, ``y = z * y_scale + y_mean`` out."""

    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: np.ndarray
    y_scale: np.ndarray
    max_offset: float = FOLD_MAX_OFFSET


def fold_affine(model: onnx.ModelProto, recipe: dict[str, Any] | None, norm: Normalisation) -> onnx.ModelProto:
    """A copy of ``model`` mapping raw inputs to raw outputs (every output: ``y`` and ``members``).

    With a ``recipe`` (from :func:`dense_graph` / :func:`set_graph`) the maps go into the named
    weights (``W / s``, ``b - W (m / s)`` in; ``W s_y``, ``b s_y + m_y`` out; computed in float64) or
    onto the named tensors; without one (a graph trained elsewhere) they are nodes on the graph's
    input and outputs.
    """
    out = copy.deepcopy(model)
    g = out.graph
    inits = {t.name: t for t in g.initializer}
    m = np.asarray(norm.x_mean, np.float64)
    s = np.asarray(norm.x_scale, np.float64)
    my, sy = np.asarray(norm.y_mean, np.float64), np.asarray(norm.y_scale, np.float64)
    recipe = recipe or {"input": [{"tensor": g.input[0].name, "start": 0, "stop": len(m)}],
                        "output": [{"tensor": o.name} for o in g.output]}
    # Per-variable transforms (log, ...) of the spec belong here, when they come: nodes on the raw input
    # ahead of the standardisation below (which then still folds into the first layer), and their
    # inverses after the output map.
    in_entries = recipe.get("input", [])
    foldable = all("weight" in e for e in in_entries) and (
        not m.size or float(np.max(np.abs(m / s))) <= norm.max_offset)
    if not foldable:  # standardise with nodes on the input itself: exact, costs two element-wise ops
        in_entries = [{"tensor": g.input[0].name, "start": 0, "stop": len(m)}] if any("weight" in e for e in in_entries) \
            else in_entries
    for e in in_entries:
        if "weight" in e:
            cols = None if e.get("columns") is None else numpy_helper.to_array(inits[e["columns"]]).astype(np.int64)
            if cols is not None and (cols.size and (cols.min() < 0 or cols.max() >= len(m))):
                raise BackendError(f"onnx: the graph selects input columns outside 0..{len(m) - 1}")
            mm, ss = (m, s) if cols is None else (m[cols], s[cols])
            w = numpy_helper.to_array(inits[e["weight"]]).astype(np.float64)  # (out, in)
            bias = numpy_helper.to_array(inits[e["bias"]]).astype(np.float64)
            _replace(inits, e["bias"], bias - w @ (mm / ss))
            _replace(inits, e["weight"], w / ss[None, :])
        else:
            lo, hi = int(e["start"]), int(e["stop"])
            if hi > len(m):
                raise BackendError(f"onnx: the fold recipe standardises input columns {lo}..{hi}; the model has {len(m)}")
            if np.any(m[lo:hi] != 0) or np.any(s[lo:hi] != 1):  # an identity map needs no nodes
                _insert_after(out, e["tensor"], [("Sub", m[lo:hi]), ("Div", s[lo:hi])], "standardise")
    for e in recipe.get("output", []):
        if "weight" in e:
            w = numpy_helper.to_array(inits[e["weight"]]).astype(np.float64)
            bias = numpy_helper.to_array(inits[e["bias"]]).astype(np.float64)
            _replace(inits, e["weight"], w * sy[:, None])
            _replace(inits, e["bias"], bias * sy + (my if e.get("offset") else 0.0))
        elif np.any(my != 0) or np.any(sy != 1):
            _insert_after(out, e["tensor"], [("Mul", sy), ("Add", my)], "unstandardise")
    return out


def _replace(inits: dict[str, TensorProto], name: str, value: np.ndarray) -> None:
    inits[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), name))


def _insert_after(model: onnx.ModelProto, tensor: str, steps: list[tuple[str, np.ndarray]], hint: str) -> None:
    """Apply ``steps`` (element-wise op with a per-feature float32 constant) to ``tensor`` for all its readers."""
    g = model.graph
    taken = ({t.name for t in g.initializer} | {o for n in g.node for o in n.output} | {i.name for i in g.input}
             | {n.name for n in g.node})
    k = 0
    while any(name.startswith(f"{tensor}.{hint}{k}") for name in taken):
        k += 1
    base = f"{tensor}.{hint}{k}"
    is_output = any(o.name == tensor for o in g.output)
    if is_output:  # the producer now writes the raw network value; the new nodes produce the output name
        source = f"{base}.in"
        for node in g.node:
            for j, o in enumerate(node.output):
                if o == tensor:
                    node.output[j] = source
        for node in g.node:
            for j, i in enumerate(node.input):
                if i == tensor:
                    node.input[j] = source
        current, final = source, tensor
    else:
        current, final = tensor, f"{base}.out"
        for node in g.node:
            for j, i in enumerate(node.input):
                if i == tensor:
                    node.input[j] = final
    new_nodes = []
    for j, (op, value) in enumerate(steps):
        const = f"{base}.c{j}"
        g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), const))
        target = final if j == len(steps) - 1 else f"{base}.t{j}"
        new_nodes.append(helper.make_node(op, [current, const], [target], name=f"{base}.{op.lower()}{j}"))
        current = target
    # Keep the graph topologically sorted: the new nodes go right after the producer (first, for an input).
    producer = next((idx for idx, node in enumerate(g.node) if (source if is_output else tensor) in node.output), -1)
    nodes = list(g.node)
    nodes[producer + 1:producer + 1] = new_nodes
    del g.node[:]
    g.node.extend(nodes)
