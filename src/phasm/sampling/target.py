"""The function a design runs: the original behind a surrogate (or a plain callable), its store and spec.

Workers call the *original* function, never the surrogate (whose mode, from the
environment, could send calls to a model).  A function importable by its
module and name travels to the workers as that reference, and each worker
imports it; other callables (defined in ``__main__``, closures) travel by value.

Example
-------
>>> import phasm
>>> @phasm.surrogate(store="captures/sq.h5")
... def sq(x: float) -> float:
...     return x * x
>>> t = SampleTarget.build(sq, Space({"x": (0.0, 2.0)}))
>>> t.name.endswith("sq"), t.store.name, t.spec is None
(True, 'sq.h5', True)
"""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from phasm.bindings.infer import bind_by_signature
from phasm.bindings.spec import Spec, SpecError
from phasm.errors import SampleError
from phasm.sampling.space import Space
from phasm.surrogate.wrapper import Surrogate


class FunctionRef:
    """A picklable handle on the original function: ``module:qualname`` when importable, else the function."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.module = getattr(fn, "__module__", None)
        self.qualname = getattr(fn, "__qualname__", None)
        self.fn: Callable[..., Any] | None = None if _resolves_to(self.module, self.qualname, fn) else fn
        self._resolved: Callable[..., Any] | None = fn

    def __getstate__(self) -> dict[str, Any]:
        return {"module": self.module, "qualname": self.qualname, "fn": self.fn}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.module, self.qualname, self.fn = state["module"], state["qualname"], state["fn"]
        self._resolved = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fn = self._resolved
        if fn is None:
            fn = self._resolved = self.fn if self.fn is not None else _unwrap(_lookup(self.module, self.qualname))
        return fn(*args, **kwargs)

    @property
    def signature(self) -> inspect.Signature:
        fn = self._resolved or self.fn or _unwrap(_lookup(self.module, self.qualname))
        return inspect.signature(fn)

    def __repr__(self) -> str:
        return f"FunctionRef({self.module}:{self.qualname}{'' if self.fn is None else ', by value'})"


def _lookup(module: str | None, qualname: str | None) -> Any:
    obj: Any = importlib.import_module(str(module))
    for part in str(qualname).split("."):
        obj = getattr(obj, part)
    return obj


def _unwrap(obj: Any) -> Callable[..., Any]:
    return obj.__wrapped__ if isinstance(obj, Surrogate) else obj


def _resolves_to(module: str | None, qualname: str | None, fn: Callable[..., Any]) -> bool:
    if not module or not qualname or module == "__main__" or "<locals>" in qualname or "<lambda>" in qualname:
        return False
    try:
        return _unwrap(_lookup(module, qualname)) is fn
    except Exception:  # not importable as named: ship the function itself
        return False


@dataclass
class SampleTarget:
    """The original function, its name, whether it is batched, the store and the spec (if known yet)."""

    fn: FunctionRef
    name: str
    store: Path
    batched: bool
    spec: Spec | None
    tolerance: Any = None

    @classmethod
    def build(cls, fn: Any, space: Space, store: str | os.PathLike[str] | None = None) -> "SampleTarget":
        if isinstance(fn, Surrogate):
            raw, name, batched = fn.__wrapped__, fn.name, fn.batched
            store = store if store is not None else fn.store_path
            spec, tolerance = fn.spec, fn.tolerance
        elif callable(fn):
            raw, batched, spec, tolerance = fn, False, None, None
            name = f"{getattr(fn, '__module__', None) or '?'}.{getattr(fn, '__qualname__', None) or getattr(fn, '__name__', type(fn).__name__)}"
        else:
            raise SampleError(f"fn: expected a function or a phasm surrogate, got {type(fn).__name__}")
        if store is None:
            raise SampleError(f"{name}: no store to write; pass store= (or declare phasm.surrogate(store=...))")
        store = Path(store).absolute()  # workers run in their own working directories
        if type(raw).__name__ == "ufunc":
            raise SampleError(f"{name} is a numpy ufunc, whose arguments have no names to sample; wrap it in a Python "
                              "function with named arguments, e.g. def f(v, z): return jv(v, z)")
        try:
            params = inspect.signature(raw).parameters
        except (TypeError, ValueError):
            raise SampleError(f"{name}: its signature cannot be read (a numpy ufunc or a builtin?); wrap it in a "
                              "Python function with named arguments, e.g. def f(v, z): return jv(v, z)") from None
        unknown = [k for k in (*space.names, *space.fixed) if k not in params]
        if unknown and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            raise SampleError(f"{name}: space variable {unknown[0]!r} is not an argument; the arguments are {list(params)}")
        missing = [p.name for p in params.values() if p.default is p.empty
                   and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in space.names and p.name not in space.fixed]
        if missing:
            raise SampleError(f"{name}: argument {missing[0]!r} has no default; give it a range or a fixed value in the space")
        stored = _stored_spec(store)
        if stored is not None:
            if spec is not None:
                stored.check_compatible(spec, f"the declarations of {name}")
            else:  # a spec read from a file carries no bindings: bind it to the arguments by name
                spec = bind_by_signature(stored, list(params), function=name, batched=batched, what=f"store {store}")
        if spec is not None:
            for v in spec.inputs:
                root = v.optic.root_argument if v.optic is not None else None
                if v.ragged or root is None or root not in params:
                    raise SpecError(f"{name}: input variable {v.name!r} is read from {v.optic!r}; "
                                    "phasm sample sets plain arguments only")
        return cls(FunctionRef(raw), name, store, batched, spec, tolerance)


def _stored_spec(store: Path) -> Spec | None:
    from phasm.store.reader import CaptureStore
    from phasm.store.writer import shard_dir

    if not (store.exists() or shard_dir(store).exists()):
        return None
    try:
        return CaptureStore(store).spec
    except FileNotFoundError:
        return None
