"""Backend ``onnx``: a network served by onnxruntime, converted from a torch backend or trained elsewhere.

It is an inference engine, not another trainer.  Three ways in:

* ``fn.train("onnx", hidden=(64, 64))`` / ``phasm train --backend onnx``: the ``trainer``
  backend (``torch`` by default; ``ensemble`` or ``torch-sets`` too) trains as usual, the
  trained network is written as an ONNX graph from its weights, and the model folder
  keeps only that graph (``model.onnx``): serving it needs onnxruntime, not torch;
* :meth:`OnnxBackend.from_backend` converts a trained torch backend in memory (what the
  artefact does when it picks onnxruntime for CPU inference, :mod:`phasm.train.engine`);
* :meth:`OnnxBackend.from_file` wraps an ONNX file made elsewhere, verified as data
  (:mod:`phasm.backends.onnx_check`).

Like every backend it maps standardised rows to standardised outputs;
:meth:`fold_normalisation` gives the raw -> raw session with the standardisation
folded into the first and last layers (:func:`phasm.backends.onnx_graph.fold_affine`).
Ensembles are one graph with outputs ``y`` (the members' mean) and ``members``.

Example
-------
>>> import numpy as np, phasm
>>> from phasm.train import fit_model
>>> spec = phasm.Spec.from_declarations("m.f", {"x": phasm.Scalar()}, {"y": phasm.Scalar()})
>>> X = np.linspace(-2, 2, 400)[:, None]; Y = np.sin(X)
>>> art, res = fit_model((X, Y), spec, backend="onnx", hidden=(32, 32), epochs=40, batch_size=32, lr=3e-3)
>>> art.backend.name, art.backend.state()["kind"], bool(res.metrics["y"]["rmse"] < 0.05)
('onnx', 'dense', True)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from phasm.backends.base import Backend, BackendError, FitHistory, TrainingData

# onnx and onnxruntime are imported where used: listing backends must work without them.
MODEL_FILE = "model.onnx"
FOLD_MAX_OFFSET = 16.0  # as phasm.backends.onnx_graph.FOLD_MAX_OFFSET
KINDS = ("dense", "sets", "external")
SET_CHUNK = 4096
_RESERVED = ("model", "physics")


class OnnxBackend(Backend):
    """Backend ``onnx``: onnxruntime serving of a network trained by ``trainer`` (or elsewhere).

    Parameters
    ----------
    trainer: the backend that trains (``torch``, ``ensemble`` of torch MLPs, ``torch-sets``).
    serve_threads: onnxruntime intra-op threads (default 1: the fastest for small batches;
        more helps batches of thousands of rows on an idle machine).
    serve_device: ``None`` (CUDA when onnxruntime-gpu offers it, else CPU), ``"cpu"``, ``"cuda"``.
    **trainer_params: the trainer's parameters (``hidden``, ``epochs``, ``k``, ``member_params`` ...).

    Example
    -------
    >>> OnnxBackend(hidden=(64,), epochs=10).get_params()["trainer"]
    'torch'
    """

    name = "onnx"
    requires = ("onnxruntime", "onnx")
    extra = "onnx"
    has_members: ClassVar[bool] = False
    accepts_ragged: ClassVar[bool] = False

    def __new__(cls, trainer: str = "torch", *args: Any, **kwargs: Any) -> "OnnxBackend":
        # The class says the capabilities (members, ragged inputs), so it follows what the trainer builds.
        if cls is OnnxBackend:
            cls = {"ensemble": OnnxEnsembleBackend, "torch-sets": OnnxSetsBackend}.get(trainer, OnnxBackend)
        return super().__new__(cls)

    def __init__(self, trainer: str = "torch", serve_threads: int = 1, serve_device: str | None = None,
                 **trainer_params: Any) -> None:
        if not isinstance(trainer, str) or trainer == self.name:
            raise BackendError(f"onnx: trainer must be the name of a torch backend (torch, ensemble, torch-sets), got {trainer!r}")
        for key in _RESERVED:
            if trainer_params.get(key) is not None:
                raise BackendError(f"onnx: {key}= is code and cannot be saved with an ONNX model; train with backend "
                                   "'torch' (its artefact picks onnxruntime for inference by itself when it is faster)")
        if isinstance(serve_threads, bool) or not isinstance(serve_threads, int) or serve_threads < 1:
            raise BackendError(f"onnx: serve_threads must be an integer >= 1, got {serve_threads!r}")
        if serve_device not in (None, "cpu") and not str(serve_device).startswith("cuda"):
            raise BackendError(f"onnx: serve_device must be None, 'cpu' or 'cuda', got {serve_device!r}")
        _check_trainer(trainer, trainer_params)
        super().__init__(trainer=trainer, serve_threads=int(serve_threads), serve_device=serve_device, **trainer_params)

    @classmethod
    def library_version(cls) -> str:
        import onnxruntime

        return str(onnxruntime.__version__)

    # -- building ---------------------------------------------------------------

    def fit(self, data: TrainingData, *, verbose: bool = False) -> FitHistory:
        """Train the ``trainer`` backend on ``data``, then adopt its network as an ONNX graph."""
        from phasm.backends.registry import make_backend

        p = dict(self.params)
        trainer = make_backend(p.pop("trainer"), **{k: v for k, v in p.items() if k not in ("serve_threads", "serve_device")})
        history = trainer.fit(data, verbose=verbose)
        self._adopt(trainer)
        history.notes["onnx"] = {"trainer": trainer.name, "nodes": len(self.model_.graph.node),
                                 "bytes": len(self.bytes_)}
        return history

    @classmethod
    def from_backend(cls, backend: Backend, *, serve_threads: int = 1, serve_device: str | None = "cpu") -> "OnnxBackend | None":
        """The ONNX form of a trained backend (torch MLP, ensemble of them, torch-sets); ``None`` if it has none.

        The onnx backend itself is returned as is.
        """
        if isinstance(backend, OnnxBackend):
            return backend
        trainer = {"torch": "torch", "ensemble": "ensemble", "torch-sets": "torch-sets"}.get(backend.name)
        if trainer is None or _network(backend) is None:
            return None
        self = _blank(trainer, dict(trainer=trainer, serve_threads=serve_threads, serve_device=serve_device))
        self._adopt(backend)
        return self

    def _adopt(self, trainer: Backend) -> None:
        net = _network(trainer)
        if net is None:
            raise BackendError(f"onnx: the network trained by {trainer.name!r} has no ONNX form here (phasm writes "
                               "the default MLP, ensembles of it and the torch-sets network; a custom module: "
                               "export it with torch.onnx and load it with phasm.train.load_onnx)")
        kind, graph_and_recipe, extra = net
        model, recipe = graph_and_recipe
        self._set_model(model, kind=kind, recipe=recipe, **extra)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], n_in: int, n_out: int, *, members: bool = False, serve_threads: int = 1,
                  serve_device: str | None = None, data: bytes | None = None) -> "OnnxBackend":
        """A backend around an ONNX file made elsewhere, verified as data and checked to map ``n_in`` to ``n_out``.

        The model takes one float32 ``(batch, n_in)`` input; its first output is ``(batch, n_out)``;
        with ``members=True`` its second output is ``(members, batch, n_out)`` (an ensemble).
        External data files are read from the file's own folder only.
        """
        path = Path(path)
        if data is None:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise BackendError(f"{path}: cannot read the ONNX file: {exc.strerror or exc}") from None
        from phasm.backends.onnx_check import verify_model

        model = verify_model(data, path, folder=path.parent)
        trainer = "external-ensemble" if members else "external"
        self = _blank("ensemble" if members else "torch", dict(trainer=trainer, serve_threads=serve_threads,
                                                               serve_device=serve_device))
        k = _check_io(model, n_in, n_out, members, path)
        self._set_model(model, kind="external", recipe=None, n_in=n_in, n_out=n_out, k=k)
        return self

    def _set_model(self, model: Any, *, kind: str, recipe: dict[str, Any] | None, n_in: int | None, n_out: int,
                   k: int = 0, sets: dict[str, Any] | None = None) -> None:
        self.model_ = model
        self.bytes_ = model.SerializeToString()
        self.kind_, self.recipe_, self.k_ = kind, recipe, int(k)
        self.n_in_ = None if n_in is None else int(n_in)
        self.n_out_ = int(n_out)
        self.sets_ = sets
        self.input_ = model.graph.input[0].name
        self.outputs_ = [o.name for o in model.graph.output][: 2 if self.k_ else 1]
        self._engine: Any = None

    # -- inference ----------------------------------------------------------

    def _shapes(self) -> list[tuple[int | None, ...]]:
        return [(None, self.n_out_)] + ([(self.k_, None, self.n_out_)] if self.k_ else [])

    def engine(self, model_bytes: bytes | None = None, where: str = "onnx") -> Any:
        """A session on this network (``model_bytes``: a folded variant of it): an :class:`~phasm.backends.onnx_engine.OnnxEngine`."""
        from phasm.backends.onnx_engine import OnnxEngine

        p = self.params
        n_in = None if self.sets_ is not None else self.n_in_
        return OnnxEngine(self.bytes_ if model_bytes is None else model_bytes, n_in=n_in, output_shapes=self._shapes(),
                          threads=p.get("serve_threads", 1), device=p.get("serve_device"), where=where)

    def _session(self) -> Any:
        if getattr(self, "model_", None) is None:
            raise BackendError("onnx: predict called before fit/load")
        eng = self._engine
        if eng is None:
            eng = self._engine = self.engine()
        return eng

    def predict(self, X: Any) -> np.ndarray:
        """Standardised ``(n, n_in)`` rows -> ``(n, n_out)`` float32."""
        return self._session().run(np.asarray(X))

    def folded_model(self, x_mean: np.ndarray, x_scale: np.ndarray, y_mean: np.ndarray, y_scale: np.ndarray,
                     *, max_offset: float = FOLD_MAX_OFFSET) -> Any:
        """The ONNX model mapping raw inputs to raw outputs (the standardisation folded in)."""
        if getattr(self, "model_", None) is None:
            raise BackendError("onnx: no model to fold (fit or load first)")
        from phasm.backends.onnx_graph import Normalisation, fold_affine

        return fold_affine(self.model_, self.recipe_, Normalisation(x_mean, x_scale, y_mean, y_scale, max_offset))

    def fold_normalisation(self, x_mean: np.ndarray, x_scale: np.ndarray, y_mean: np.ndarray, y_scale: np.ndarray) -> Any:
        """Raw ``X`` -> raw ``Y`` through a session on the folded graph (flat inputs)."""
        if self.sets_ is not None:
            return None
        engine = self.engine(self.folded_model(x_mean, x_scale, y_mean, y_scale).SerializeToString(), "onnx (folded)")
        return engine.run

    def folded_engine(self, x_mean: np.ndarray, x_scale: np.ndarray, y_mean: np.ndarray, y_scale: np.ndarray) -> Any:
        """A session on the folded graph: ``run_all`` gives ``[y]`` or ``[y, members]`` in raw units."""
        return self.engine(self.folded_model(x_mean, x_scale, y_mean, y_scale).SerializeToString(), "onnx (folded)")

    # -- persistence ----------------------------------------------------------

    def state(self) -> dict[str, Any]:
        widths = {"n_in": self.n_in_} if self.sets_ is None else {}  # set models: the width varies with the sets
        return {"kind": self.kind_, **widths, "n_out": self.n_out_, "members": self.k_,
                "input": self.input_, "outputs": self.outputs_, "recipe": self.recipe_, "sets": self.sets_}

    def save(self, directory: Path) -> list[str]:
        if getattr(self, "bytes_", None) is None:
            raise BackendError("onnx: nothing to save (fit or load first)")
        (Path(directory) / MODEL_FILE).write_bytes(self.bytes_)
        return [MODEL_FILE]

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], state: dict[str, Any]) -> "OnnxBackend":
        path = Path(directory) / MODEL_FILE
        try:
            data = path.read_bytes()
        except OSError:
            raise BackendError(f"onnx: the model file {MODEL_FILE} is missing") from None
        from phasm.backends.onnx_check import verify_model

        model = verify_model(data, MODEL_FILE)  # the folder's manifest checked the bytes; external data refused
        kind = state.get("kind")
        if kind not in KINDS:
            raise BackendError(f"onnx: unknown model kind {kind!r} in the artefact (expected one of {KINDS})")
        k = _int(state.get("members", 0), "members", 0)
        sets = state.get("sets")
        trainer = params.get("trainer", "torch")
        self = _blank("ensemble" if k else ("torch-sets" if sets is not None else "torch"), dict(params))
        if not isinstance(trainer, str):
            raise BackendError(f"onnx: trainer {trainer!r} in the artefact is not a name")
        n_out = _int(state.get("n_out"), "n_out", 1)
        if sets is not None:
            sets = _check_sets(sets)
            n_in = None
        else:
            n_in = _int(state.get("n_in"), "n_in", 1)
            if _check_io(model, n_in, n_out, bool(k), MODEL_FILE) != k:
                raise BackendError(f"onnx: the artefact says {k} members; the graph's members output disagrees")
        recipe = _check_recipe(state.get("recipe"), model)
        self._set_model(model, kind=kind, recipe=recipe, n_in=n_in, n_out=n_out, k=k, sets=sets)
        return self


class OnnxEnsembleBackend(OnnxBackend):
    """The onnx backend of an ensemble: one graph, outputs ``y`` (mean) and ``members`` ``(k, n, n_out)``."""

    has_members = True

    def predict_members(self, X: np.ndarray) -> np.ndarray:
        """Every member's standardised prediction ``(k, n, n_out)``."""
        return self._session().run_all(np.asarray(X))[1]


class OnnxSetsBackend(OnnxBackend):
    """The onnx backend of a ``torch-sets`` network: takes :class:`~phasm.bindings.ragged.RaggedInputs`."""

    accepts_ragged = True

    def predict(self, X: Any) -> np.ndarray:
        """Standardised ragged rows (or an encoded matrix) -> ``(n, n_out)``, in chunks of similar lengths."""
        from phasm.bindings.ragged import RaggedInputs, encode, row_max_lengths

        session = self._session()
        if not isinstance(X, RaggedInputs):
            return session.run(np.asarray(X, np.float32))
        sets = self.sets_ or {}
        if list(X.sets) != sets.get("names") or X.fixed.shape[1] != sets.get("n_fixed"):
            raise BackendError(f"onnx: inputs have sets {list(X.sets)} and {X.fixed.shape[1]} fixed features; the model "
                               f"was trained on sets {sets.get('names')} and {sets.get('n_fixed')} fixed features")
        n = len(X)
        if n <= 64:
            return session.run(encode(X))
        out = np.empty((n, self.n_out_), np.float32)
        order = np.argsort(row_max_lengths(X), kind="stable")  # similar lengths together: little padding
        for s in range(0, n, SET_CHUNK):
            idx = order[s : s + SET_CHUNK]
            out[idx] = session.run(encode(X.take(idx)))
        return out


def _check_trainer(trainer: str, params: dict[str, Any]) -> None:
    """The trainer exists here and takes ``params`` (named in the error), before any training."""
    import inspect

    from phasm.backends.registry import get_backend

    cls = get_backend(trainer)
    if trainer not in ("torch", "ensemble", "torch-sets"):
        raise BackendError(f"onnx: trainer {trainer!r} trains models that have no ONNX form here; "
                           "use torch, ensemble (of torch) or torch-sets")
    if trainer == "ensemble" and params.get("member", "torch") != "torch":
        raise BackendError(f"onnx: ensemble members {params.get('member')!r} have no ONNX form here; members must be 'torch'")
    sig = inspect.signature(cls.__init__)
    if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        takes = [n for n in sig.parameters if n != "self"]
        for key in params:
            if key not in takes:
                raise BackendError(f"onnx: trainer {trainer!r} has no parameter {key!r}; it takes {', '.join(takes)}")
    cls(**params)  # the trainer checks the values (one clear error each)


def _blank(trainer: str, params: dict[str, Any]) -> OnnxBackend:
    """An instance of the class for ``trainer`` with ``params`` stored as is (loading: no trainer import)."""
    cls = {"ensemble": OnnxEnsembleBackend, "torch-sets": OnnxSetsBackend}.get(trainer, OnnxBackend)
    self = object.__new__(cls)
    Backend.__init__(self, **params)
    return self


def _network(backend: Backend) -> tuple[str, Any, dict[str, Any]] | None:
    """``(kind, (graph, recipe), sizes)`` for a trained torch backend, or ``None``."""
    from phasm.backends.onnx_graph import dense_graph, describe_setnet, describe_torch_mlp, set_graph

    name = backend.name
    if name == "torch" and getattr(backend, "kind_", None) == "mlp":
        net = describe_torch_mlp(backend.module_)  # type: ignore[attr-defined]
        if net is None:
            return None
        n_in, n_out = backend.n_in_, backend.n_out_  # type: ignore[attr-defined]
        return "dense", dense_graph([net], n_in, n_out), {"n_in": n_in, "n_out": n_out}
    if name == "ensemble" and getattr(backend, "members_", None):
        members = backend.members_  # type: ignore[attr-defined]
        nets = [describe_torch_mlp(m.module_) if m.name == "torch" and getattr(m, "kind_", None) == "mlp" else None
                for m in members]
        if any(n is None for n in nets):
            return None
        n_in, n_out = members[0].n_in_, members[0].n_out_
        return "dense", dense_graph(nets, n_in, n_out), {"n_in": n_in, "n_out": n_out, "k": len(nets)}  # type: ignore[arg-type]
    if name == "torch-sets" and getattr(backend, "module_", None) is not None:
        desc = describe_setnet(backend.module_, backend.params["activation"])  # type: ignore[attr-defined]
        if desc is None:
            return None
        sets = {"n_fixed": desc.n_fixed, "set_dims": desc.set_dims, "names": list(backend.set_names_)}  # type: ignore[attr-defined]
        return "sets", set_graph(desc, backend.n_out_), {"n_in": None, "n_out": backend.n_out_, "sets": sets}  # type: ignore[attr-defined]
    return None


def _int(value: Any, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise BackendError(f"onnx: artefact state {what}={value!r} is not an integer >= {low}")
    return value


def _dim(d: Any) -> int | None:
    return int(d.dim_value) if d.HasField("dim_value") else None


def _check_io(model: Any, n_in: int, n_out: int, members: bool, where: Any) -> int:
    """Check the graph's input/output types and static widths; return the member count (0: not an ensemble)."""
    g = model.graph
    init = {t.name for t in g.initializer}
    inputs = [i for i in g.input if i.name not in init]
    if len(inputs) != 1:
        raise BackendError(f"{where}: the model takes {len(inputs)} inputs ({[i.name for i in inputs]}); phasm feeds "
                           f"one (batch, {n_in}) float32 matrix")
    need = 2 if members else 1
    if len(g.output) < need:
        raise BackendError(f"{where}: the model has {len(g.output)} output(s); {need} needed"
                           + (" (the mean and the members)" if members else ""))

    def tensor_dims(v: Any, rank: int, what: str) -> list[int | None]:
        t = v.type.tensor_type
        if not v.type.HasField("tensor_type") or t.elem_type != 1:
            raise BackendError(f"{where}: {what} {v.name!r} is not a float32 tensor")
        dims: list[int | None] = [_dim(d) for d in t.shape.dim] if t.HasField("shape") else [None] * rank
        if len(dims) != rank:
            raise BackendError(f"{where}: {what} {v.name!r} has rank {len(dims)}, expected {rank}")
        return dims

    di = tensor_dims(inputs[0], 2, "input")
    if di[1] is not None and di[1] != n_in:
        raise BackendError(f"{where}: input {inputs[0].name!r} has {di[1]} features; the spec has {n_in}")
    do = tensor_dims(g.output[0], 2, "output")
    if do[1] is not None and do[1] != n_out:
        raise BackendError(f"{where}: output {g.output[0].name!r} has {do[1]} features; the spec has {n_out}")
    if not members:
        return 0
    dm = tensor_dims(g.output[1], 3, "members output")
    if dm[0] is None or dm[0] < 2:
        raise BackendError(f"{where}: members output {g.output[1].name!r} needs a fixed member count >= 2, got {dm[0]}")
    if dm[2] is not None and dm[2] != n_out:
        raise BackendError(f"{where}: members output {g.output[1].name!r} has {dm[2]} features; the spec has {n_out}")
    return int(dm[0])


def _check_sets(sets: Any) -> dict[str, Any]:
    if not isinstance(sets, dict) or not isinstance(sets.get("names"), list) \
            or not all(isinstance(s, str) for s in sets["names"]):
        raise BackendError("onnx: artefact state 'sets' needs the set names")
    dims = sets.get("set_dims")
    if not isinstance(dims, list) or len(dims) != len(sets["names"]):
        raise BackendError("onnx: artefact state 'sets' needs one width per set")
    return {"n_fixed": _int(sets.get("n_fixed"), "sets.n_fixed", 0), "set_dims": [_int(k, "set width", 1) for k in dims],
            "names": list(sets["names"])}


def _check_recipe(recipe: Any, model: Any) -> dict[str, Any] | None:
    """The fold recipe from the artefact, each entry naming weights of the right shape or a tensor of the graph."""
    if recipe is None:
        return None
    if not isinstance(recipe, dict):
        raise BackendError("onnx: artefact state 'recipe' is not a mapping")
    inits = {t.name: tuple(t.dims) for t in model.graph.initializer}
    tensors = {o for n in model.graph.node for o in n.output} | {i.name for i in model.graph.input}
    out: dict[str, Any] = {"input": [], "output": []}
    for side in ("input", "output"):
        entries = recipe.get(side, [])
        if not isinstance(entries, list):
            raise BackendError(f"onnx: recipe {side} is not a list")
        for e in entries:
            if not isinstance(e, dict):
                raise BackendError(f"onnx: recipe {side} entry {json.dumps(e)[:80]} is not a mapping")
            if "weight" in e:
                w, b = e.get("weight"), e.get("bias")
                if w not in inits or b not in inits or len(inits[w]) != 2 or inits[b] != (inits[w][0],):
                    raise BackendError(f"onnx: recipe names weights {w!r}/{b!r} the graph does not hold as a layer")
                cols = e.get("columns")
                if cols is not None and (cols not in inits or len(inits[cols]) != 1 or inits[cols][0] != inits[w][1]):
                    raise BackendError(f"onnx: recipe column index {cols!r} does not fit weights {w!r}")
                out[side].append({"weight": w, "bias": b, "columns": cols, "offset": bool(e.get("offset", False))})
            elif e.get("tensor") in tensors:
                entry: dict[str, Any] = {"tensor": e["tensor"]}
                if side == "input":
                    lo, hi = _int(e.get("start"), "recipe start", 0), _int(e.get("stop"), "recipe stop", 0)
                    if hi <= lo:
                        raise BackendError(f"onnx: recipe columns {lo}..{hi} are empty")
                    entry.update(start=lo, stop=hi)
                out[side].append(entry)
            else:
                raise BackendError(f"onnx: recipe entry {json.dumps(e)[:80]} names nothing in the graph")
    return out


__all__ = ["MODEL_FILE", "OnnxBackend", "OnnxEnsembleBackend", "OnnxSetsBackend"]
