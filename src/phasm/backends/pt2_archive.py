"""A ``.pt2`` archive read as data: every entry checked, then rebuilt so torch reads only what was checked.

``torch.export.load`` is not safe on a file from elsewhere (torch 2.13): it unpickles entries marked
``use_pickle``, ``opaque_obj_*`` / ``custom_obj_*`` constants, legacy ``*.pt`` state dicts and the
sample inputs (retrying with ``weights_only=False``); parses symbolic sizes with ``sympy.sympify``
(``eval``); imports modules named in tree specs; and ``ExportedProgram.module()`` compiles the
archive's ``guards_code`` and argument names into Python source.  It also reads the first of two
zip entries with one name where :mod:`zipfile` reads the last.

:func:`clean_pt2` therefore never hands torch the user's file.  It reads the zip once with
:mod:`zipfile` and refuses duplicate names, entries outside the archive's root folder, and any entry
it does not know.  It keeps only the program (``models/model.json``), raw tensor payloads and their
configs, after checking: no entry is pickled; graph nodes call ``aten`` operators (minus file,
printing and process-state ones) or the few Python operators export uses on sizes; symbolic
expressions, guards and tree specs match small grammars with no attribute access and no names
beyond sympy's constructors; names are identifiers.  It then writes a new archive from the checked
values (no sample inputs: the one pickle torch would still read) and returns its bytes;
:func:`check_program` checks the loaded graph once more.

Example
-------
>>> clean_pt2(b"not a zip", "m.pt2")
Traceback (most recent call last):
...
phasm.errors.BackendError: m.pt2: not a torch.export .pt2 archive (File is not a zip file)
"""

from __future__ import annotations

import ast
import functools
import io
import json
import math
import operator
import re
import struct
import sys
import zipfile
import zlib
from typing import Any, Callable

from phasm.errors import BackendError

MODEL_JSON = "models/model.json"
WEIGHTS_CONFIG = "data/weights/model_weights_config.json"
CONSTANTS_CONFIG = "data/constants/model_constants_config.json"
SAMPLE_INPUTS = "data/sample_inputs/model.pt"
WEIGHTS_DIR = "data/weights/"
CONSTANTS_DIR = "data/constants/"
# Written by torch's zip writer; the rebuilt archive gets fresh ones.
WRITER_ENTRIES = (".data/version", ".data/serialization_id", "byteorder")

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_FQN_PART = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+)\Z")
_ATEN_TARGET = re.compile(r"torch\.ops\.aten\.([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\Z")
_PAYLOAD_NAME = {"weights": re.compile(r"weight_[0-9]+\Z"), "constants": re.compile(r"tensor_[0-9]+\Z")}
MAX_EXPRESSION = 4096  # characters in one symbolic expression or guard

# aten operators that read or write files, print, or change process-wide state: never in a model.
DENIED_ATEN = frozenset({
    "from_file", "save", "_print", "warn", "manual_seed", "seed", "set_grad_enabled", "record_stream", "wait",
    "set_", "set_data", "_cufft_set_plan_cache_max_size", "_cufft_clear_plan_cache",
})


def _python_targets() -> dict[str, Callable[..., Any]]:
    """The Python functions an exported graph may call on sizes, by the name torch serialises them under."""
    import torch

    funcs: list[Callable[..., Any]] = [
        operator.getitem, operator.eq, operator.ne, operator.le, operator.ge, operator.lt, operator.gt,
        operator.neg, operator.pos, operator.mul, operator.add, operator.sub, operator.floordiv, operator.mod,
        operator.pow, operator.truediv, operator.and_, operator.or_, operator.lshift, operator.rshift, math.trunc,
        torch.sym_not, torch.sym_int, torch.sym_float, torch.sym_ite, torch.sym_max, torch.sym_min, torch.sym_sqrt,
    ]
    return {f"{f.__module__}.{f.__name__}": f for f in funcs}


@functools.lru_cache(maxsize=1)
def _aten_operators() -> frozenset[str]:
    import torch

    return frozenset(s.name.split("::", 1)[1] for s in torch._C._jit_get_all_schemas() if s.name.startswith("aten::"))


# Names a symbolic expression (sympy ``srepr``) may call: sympy's constructors and torch's sympy functions.
SYMPY_CALLS = frozenset({
    "Symbol", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "Mod", "Max", "Min", "Abs", "floor", "ceiling",
    "Equality", "Unequality", "StrictLessThan", "LessThan", "StrictGreaterThan", "GreaterThan", "Eq", "Ne", "Lt",
    "Le", "Gt", "Ge", "And", "Or", "Not", "Piecewise", "ExprCondPair",
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv", "LShift",
    "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv", "IsNonOverlappingAndDenseIndicator",
    "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "Identity",
})
SYMPY_NAMES = frozenset({"oo", "zoo", "nan", "true", "false", "int_oo", "pi", "E"})
# Names a guard (Python source torch compiles) may use, and the tensor methods it may call.
GUARD_NAMES = frozenset({"L", "Max", "Min", "Abs", "inf"})
GUARD_METHODS = frozenset({"size", "stride", "storage_offset", "dim", "numel"})
GUARD_MATH = frozenset({"floor", "ceil", "trunc", "isnan", "isinf", "sqrt"})
TREESPEC_TYPES = frozenset({"builtins.tuple", "builtins.list", "builtins.dict"})
INPUT_KINDS = frozenset({"user_input", "parameter", "buffer", "tensor_constant"})
OUTPUT_KINDS = frozenset({"user_output", "buffer_mutation"})
NODE_METADATA = ("stack_trace", "nn_module_stack", "torch_fn")  # plain strings; other keys are dropped


class _Refused(Exception):
    """Internal: why an archive is refused (turned into a BackendError naming the file)."""


def _json(raw: bytes, what: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise _Refused(f"{what} has the key {k!r} twice")
            out[k] = v
        return out

    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=pairs)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _Refused(f"{what} is not valid JSON ({type(exc).__name__})") from None


def _fqn(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name or not all(_FQN_PART.match(p) for p in name.split(".")) \
            or any(p.startswith("__") for p in name.split(".")):
        raise _Refused(f"{what} {name!r} is not a dotted name")
    return name


def _identifier(name: Any, what: str) -> str:
    if not isinstance(name, str) or not _IDENT.match(name) or name.startswith("__"):
        raise _Refused(f"{what} {name!r} is not an identifier")
    return name


def _parse(source: Any, what: str) -> ast.AST:
    if not isinstance(source, str) or len(source) > MAX_EXPRESSION:
        raise _Refused(f"{what} is not a string of at most {MAX_EXPRESSION} characters")
    try:
        return ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise _Refused(f"{what} {source[:80]!r} does not parse") from None


def _check_sympy(source: Any) -> None:
    """A symbolic expression must be sympy ``srepr`` of known constructors: no attributes, no other names."""
    what = "symbolic expression"
    for node in ast.walk(_parse(source, what)):
        ok = isinstance(node, (ast.Expression, ast.Tuple, ast.Load, ast.USub, ast.UAdd))
        if isinstance(node, ast.Call):
            ok = isinstance(node.func, ast.Name) and node.func.id in SYMPY_CALLS
        elif isinstance(node, ast.keyword):
            ok = node.arg is not None and bool(_IDENT.match(node.arg))
        elif isinstance(node, ast.Name):
            ok = node.id in SYMPY_CALLS or node.id in SYMPY_NAMES
        elif isinstance(node, ast.Constant):
            ok = isinstance(node.value, (bool, int, float)) or (
                isinstance(node.value, str) and re.fullmatch(r"[A-Za-z0-9_.+\-]*", node.value) is not None)
        elif isinstance(node, ast.UnaryOp):
            ok = isinstance(node.op, (ast.USub, ast.UAdd))
        if not ok:
            raise _Refused(f"{what} {source[:80]!r} uses {type(node).__name__}")


def _size_path(node: ast.AST) -> bool:
    """``L['x']``, ``L['x'].size()[0]``: subscripts and size methods rooted at the inputs ``L``."""
    while True:
        if isinstance(node, ast.Name):
            return node.id == "L"
        if isinstance(node, ast.Subscript):
            key = node.slice
            if not isinstance(key, ast.Constant) or not (
                    type(key.value) is int or isinstance(key.value, str) and _IDENT.match(key.value)):
                return False
            node = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.args \
                and not node.keywords and node.func.attr in GUARD_METHODS:
            node = node.func.value
        else:
            return False


def _check_guard(source: Any) -> None:
    """A guard must be arithmetic, comparisons and ``Max/Min/Abs/math.*`` of input sizes (torch runs it as Python)."""
    tree = _parse(source, "guard")
    plain = (ast.Expression, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.Load, ast.Eq, ast.NotEq, ast.Lt,
             ast.LtE, ast.Gt, ast.GtE, ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Add, ast.Sub, ast.Mult,
             ast.FloorDiv, ast.Mod, ast.Div, ast.Pow)
    for node in ast.walk(tree):
        if isinstance(node, plain) or isinstance(node, ast.Constant) and type(node.value) in (bool, int, float):
            continue
        if isinstance(node, ast.Subscript) and _size_path(node):
            continue  # its key, a constant, is checked by _size_path; do not visit it as a loose string
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _is_size_key(tree, node):
            continue
        if isinstance(node, ast.Name) and (node.id in GUARD_NAMES or node.id == "math" and _is_math(tree, node)):
            continue
        if isinstance(node, ast.Attribute) and (
                isinstance(node.value, ast.Name) and node.value.id == "math" and node.attr in GUARD_MATH
                or node.attr in GUARD_METHODS and _size_path(node.value)):
            continue
        if isinstance(node, ast.Call) and not node.keywords and (
                isinstance(node.func, ast.Name) and node.func.id in ("Max", "Min", "Abs")
                or isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "math" and node.func.attr in GUARD_MATH
                or _size_path(node)):
            continue
        raise _Refused(f"guard {source[:80]!r} uses {type(node).__name__}")


def _is_size_key(tree: ast.AST, const: ast.Constant) -> bool:
    return any(isinstance(n, ast.Subscript) and n.slice is const and _size_path(n) for n in ast.walk(tree))


def _is_math(tree: ast.AST, name: ast.Name) -> bool:
    return any(isinstance(n, ast.Attribute) and n.value is name and n.attr in GUARD_MATH for n in ast.walk(tree))


def _check_treespec(source: Any, what: str) -> None:
    """Refuse a serialised tree spec unless it is tuples, lists, dicts with identifier keys, and leaves."""
    if not isinstance(source, str):
        raise _Refused(f"{what} is not a string")
    spec = _json(source.encode(), what)
    if not (isinstance(spec, list) and len(spec) == 2 and spec[0] == 1):
        raise _Refused(f"{what} is not a protocol-1 tree spec")

    def node(s: Any, depth: int) -> None:
        if depth > 64 or not isinstance(s, dict) or set(s) != {"type", "context", "children_spec"} \
                or not isinstance(s["children_spec"], list):
            raise _Refused(f"{what} has a malformed node")
        typ, ctx = s["type"], s["context"]
        if typ is None:
            if ctx is not None or s["children_spec"]:
                raise _Refused(f"{what} has a malformed leaf")
            return
        if typ not in TREESPEC_TYPES:
            raise _Refused(f"{what} has a node of type {typ!r}; only tuples, lists, dicts and tensors are read")
        if typ == "builtins.dict":
            keys = _json(ctx.encode(), what) if isinstance(ctx, str) else None
            if not isinstance(keys, list) or len(keys) != len(s["children_spec"]):
                raise _Refused(f"{what} has a dict without its list of keys")
            for k in keys:
                _identifier(k, f"{what} key")
        elif ctx != "null":
            raise _Refused(f"{what} has a {typ} with context {ctx!r}")
        for child in s["children_spec"]:
            node(child, depth + 1)

    node(spec[1], 0)


def _check_target(target: Any) -> None:
    if not isinstance(target, str):
        raise _Refused(f"graph node target {target!r} is not a name")
    m = _ATEN_TARGET.match(target)
    if m:
        if m.group(1) not in _aten_operators():
            raise _Refused(f"graph calls {target!r}, which is not an aten operator")
        if m.group(1) in DENIED_ATEN:
            raise _Refused(f"graph calls {target}, an operator that touches files or process state")
        return
    if target not in _python_targets():
        raise _Refused(f"graph calls {target!r}; a model may call aten operators only")


def _walk_model(value: Any, key: str | None, depth: int) -> Any:
    """Check every node, expression, guard, tree spec and name in the program JSON; return it cleaned."""
    if depth > 200:
        raise _Refused("the program is nested too deeply")
    if isinstance(value, list):
        return [_walk_model(v, key, depth + 1) for v in value]
    if not isinstance(value, dict):
        if key == "expr_str":
            _check_sympy(value)
        elif key in ("in_spec", "out_spec"):
            _check_treespec(value, key)
        elif key in ("parameter_name", "buffer_name", "tensor_constant_name"):
            _fqn(value, key)
        elif key == "fqn" and value != "":
            _fqn(value, "module path")
        return value
    if {"target", "inputs", "outputs"} <= set(value):  # a graph node
        _check_target(value["target"])
        meta = value.get("metadata") or {}
        if not isinstance(meta, dict):
            raise _Refused("graph node metadata is not a mapping")
        value = {**value, "metadata": {k: meta[k] for k in NODE_METADATA if isinstance(meta.get(k), str)}}
    if "forward_arg_names" in value and value["forward_arg_names"] is not None:
        names = value["forward_arg_names"]
        if not isinstance(names, list):
            raise _Refused("forward_arg_names is not a list")
        for n in names:
            _identifier(n, "argument name")
    out: dict[str, Any] = {}
    for k, v in value.items():
        if k == "custom_obj_values" and v:
            raise _Refused("the program holds custom (pickled) objects")
        if k == "treespec_namedtuple_fields" and v:
            raise _Refused("the program names namedtuple types")
        out[k] = _walk_model(v, k, depth + 1)
    return out


def _check_model(model: Any) -> dict[str, Any]:
    if not isinstance(model, dict) or not isinstance(model.get("graph_module"), dict):
        raise _Refused(f"{MODEL_JSON} is not an exported program")
    guards = model.get("guards_code", [])
    if not isinstance(guards, list):
        raise _Refused("guards_code is not a list")
    for g in guards:
        _check_guard(g)
    verifiers = model.get("verifiers", [])
    if not isinstance(verifiers, list) or any(v not in ("ATEN", "TRAINING", "") for v in verifiers):
        raise _Refused(f"unknown verifiers {verifiers!r}")
    ranges = model.get("range_constraints", {})
    if not isinstance(ranges, dict):
        raise _Refused("range_constraints is not a mapping")
    for name, r in ranges.items():
        if not isinstance(r, dict) or any(not (r.get(b) is None or type(r.get(b)) is int) for b in ("min_val", "max_val")):
            raise _Refused(f"range constraint {name!r} is not a pair of integers")
    gm = model["graph_module"]
    meta = gm.get("metadata", {})
    if not isinstance(meta, dict) or set(meta) - {"custom"} or not all(isinstance(v, str) for v in meta.values()):
        raise _Refused("the program's metadata holds more than a 'custom' JSON string")
    if "custom" in meta:
        _json(meta["custom"].encode(), "custom metadata")
    sig = gm.get("signature")
    if not isinstance(sig, dict):
        raise _Refused("the program has no signature")
    for specs, kinds in ((sig.get("input_specs"), INPUT_KINDS), (sig.get("output_specs"), OUTPUT_KINDS)):
        if not isinstance(specs, list):
            raise _Refused("the program signature is malformed")
        for s in specs:
            if not isinstance(s, dict) or len(s) != 1 or next(iter(s)) not in kinds:
                raise _Refused(f"the program signature has a {next(iter(s)) if isinstance(s, dict) and s else s!r} "
                               f"entry; only {', '.join(sorted(kinds))} are read")
            if "user_input" in s and not (isinstance(s["user_input"], dict)
                                          and isinstance(s["user_input"].get("arg"), dict)
                                          and set(s["user_input"]["arg"]) == {"as_tensor"}):
                raise _Refused("the program takes an input that is not a tensor")
    cleaned: dict[str, Any] = _walk_model(model, None, 0)
    return cleaned


def _check_config(raw: bytes, kind: str, entries: dict[str, bytes]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A weights or constants config: every payload a raw tensor (never pickled), present in the archive."""
    directory = WEIGHTS_DIR if kind == "weights" else CONSTANTS_DIR
    cfg = _json(raw, f"the {kind} config")
    if not isinstance(cfg, dict) or set(cfg) != {"config"} or not isinstance(cfg["config"], dict):
        raise _Refused(f"the {kind} config is malformed")
    payloads: dict[str, bytes] = {}
    for fqn, meta in cfg["config"].items():
        _fqn(fqn, f"{kind} entry")
        if not isinstance(meta, dict) or set(meta) != {"path_name", "is_param", "use_pickle", "tensor_meta"}:
            raise _Refused(f"{kind} entry {fqn!r} is malformed")
        if meta["use_pickle"] is not False:
            raise _Refused(f"{kind} entry {fqn!r} is stored with pickle (a tensor subclass); phasm never unpickles")
        name = meta["path_name"]
        if isinstance(name, str) and name.startswith(("custom_obj_", "opaque_obj_")):
            raise _Refused(f"{kind} entry {fqn!r} is a pickled custom object; phasm never unpickles")
        if not isinstance(name, str) or not _PAYLOAD_NAME[kind].match(name):
            raise _Refused(f"{kind} entry {fqn!r} points at {name!r}, not a raw tensor payload")
        if not isinstance(meta["is_param"], bool) or not isinstance(meta["tensor_meta"], dict):
            raise _Refused(f"{kind} entry {fqn!r} is malformed")
        device = meta["tensor_meta"].get("device")
        if not isinstance(device, dict) or device.get("type") not in ("cpu", "cuda"):
            raise _Refused(f"{kind} entry {fqn!r} is on device {device!r}")
        if directory + name not in entries:
            raise _Refused(f"{kind} entry {fqn!r} points at {directory + name}, which is not in the archive")
        payloads[directory + name] = entries[directory + name]
    cleaned: dict[str, Any] = _walk_model(cfg, None, 0)
    return cleaned, payloads


def _read_zip(data: bytes) -> dict[str, bytes]:
    """Entries below the archive's root folder, read once; duplicates and odd entries refused."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, struct.error) as exc:
        raise _Refused(f"not a torch.export .pt2 archive ({exc})") from None
    with zf:
        infos = zf.infolist()
        if not infos:
            raise _Refused("the archive is empty")
        root = infos[0].filename.split("/", 1)[0] + "/"
        entries: dict[str, bytes] = {}
        for info in infos:
            name = info.filename
            rest = name[len(root):]
            if not name.startswith(root) or not rest or name.endswith("/") or "\\" in name \
                    or any(p in ("", ".", "..") for p in rest.split("/")):
                raise _Refused(f"entry {name!r} is not a file under the archive's root folder {root!r}")
            if rest in entries:
                raise _Refused(f"the archive has two entries named {name!r}; torch and zip readers pick different ones")
            if info.flag_bits & 0x1:
                raise _Refused(f"entry {name!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise _Refused(f"entry {name!r} uses compression method {info.compress_type}")
            try:
                entries[rest] = zf.read(info)
            except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, struct.error) as exc:
                raise _Refused(f"entry {name!r} is corrupted ({exc})") from None
    return entries


def _why_unknown(name: str) -> str:
    if name.startswith("data/aotinductor/"):
        return "it holds AOTInductor compiled code; phasm loads only plain exported programs"
    if name.endswith(".pt"):
        return "it is a pickled (legacy) state dict; re-save with a current torch.export.save"
    if "custom_obj_" in name or "opaque_obj_" in name:
        return "it is a pickled custom object; phasm never unpickles"
    if name.startswith("models/"):
        return "phasm loads the program named 'model' only"
    return "phasm does not know it, so it is not loaded"


def clean_pt2(data: bytes, where: str) -> bytes:
    """The bytes of a new archive holding only the checked program, configs and raw tensors of ``data``.

    Raises :class:`~phasm.errors.BackendError` naming ``where`` and the reason when anything is refused.
    """
    try:
        entries = _read_zip(data)
        if entries.pop("archive_format", None) != b"pt2":
            raise _Refused("not a torch.export .pt2 archive (no archive_format 'pt2')")
        from torch.export.pt2_archive.constants import ARCHIVE_VERSION_VALUE

        version = entries.pop("archive_version", None)
        if version != ARCHIVE_VERSION_VALUE.encode():
            raise _Refused(f"archive version {version!r} is not {ARCHIVE_VERSION_VALUE!r}; re-save with torch "
                           f"{_torch_version()}")
        byteorder = entries.pop("byteorder", b"little")
        if byteorder != sys.byteorder.encode():
            raise _Refused(f"tensors are stored {byteorder!r}-endian")
        for name in WRITER_ENTRIES:
            entries.pop(name, None)
        if MODEL_JSON not in entries:
            raise _Refused("no exported program 'model' in the archive; save it with torch.export.save")
        for required in (WEIGHTS_CONFIG, CONSTANTS_CONFIG):
            if required not in entries:
                raise _Refused(f"no {required} in the archive")
        for name in entries:  # refuse what would be unpickled or run, before anything is parsed
            if name.endswith(".pt") and name != SAMPLE_INPUTS or name.startswith("data/aotinductor/"):
                raise _Refused(f"entry {name!r} is refused: {_why_unknown(name)}")
        model = _check_model(_json(entries.pop(MODEL_JSON), MODEL_JSON))
        weights, weight_files = _check_config(entries.pop(WEIGHTS_CONFIG), "weights", entries)
        constants, constant_files = _check_config(entries.pop(CONSTANTS_CONFIG), "constants", entries)
        entries.pop(SAMPLE_INPUTS, None)  # a pickle: never read, the rebuilt archive has none
        unread = [n for n in entries if n not in weight_files and n not in constant_files and not n.startswith("extra/")]
        if unread:
            raise _Refused(f"entry {unread[0]!r} is refused: {_why_unknown(unread[0])}")
    except _Refused as exc:
        raise BackendError(f"{where}: {exc}") from None
    return _write(model, weights, constants, {**weight_files, **constant_files})


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


def _write(model: dict[str, Any], weights: dict[str, Any], constants: dict[str, Any], payloads: dict[str, bytes]) -> bytes:
    from torch.export.pt2_archive import PT2ArchiveWriter
    from torch.export.pt2_archive.constants import (ARCHIVE_FORMAT_PATH, ARCHIVE_FORMAT_VALUE, ARCHIVE_VERSION_PATH,
                                                     ARCHIVE_VERSION_VALUE)

    buf = io.BytesIO()
    with PT2ArchiveWriter(buf) as w:
        w.write_string(ARCHIVE_FORMAT_PATH, ARCHIVE_FORMAT_VALUE)
        w.write_string(ARCHIVE_VERSION_PATH, ARCHIVE_VERSION_VALUE)
        w.write_string(MODEL_JSON, json.dumps(model))
        w.write_bytes(SAMPLE_INPUTS, b"")  # empty: torch reads no example inputs (and unpickles nothing)
        w.write_string(WEIGHTS_CONFIG, json.dumps(weights))
        w.write_string(CONSTANTS_CONFIG, json.dumps(constants))
        for name, payload in payloads.items():
            w.write_bytes(name, payload)
    return buf.getvalue()


def check_program(prog: Any, where: str) -> None:
    """Check a loaded ``ExportedProgram``'s graphs: only aten operators (not :data:`DENIED_ATEN`) and size arithmetic."""
    import torch

    allowed = set(_python_targets().values())
    for gm in prog.graph_module.modules():
        if not isinstance(gm, torch.fx.GraphModule):
            continue
        for node in gm.graph.nodes:
            if node.op in ("placeholder", "output", "get_attr"):
                continue
            target = node.target
            if node.op == "call_function" and (
                    isinstance(target, torch._ops.OpOverload) and target.namespace == "aten"
                    and target._schema.name.split("::")[-1] not in DENIED_ATEN or target in allowed):
                continue
            raise BackendError(f"{where}: the graph has a {node.op} node {target!r}; a model may call aten operators only")
