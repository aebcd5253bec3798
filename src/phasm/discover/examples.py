"""Where ``phasm inspect`` gets its function and its example calls from.

- :func:`load_target`: ``"package.module:function"`` (``Class.method`` for a
  method) or ``"path/to/file.py:function"``;
- :func:`parse_example`: a Python expression for one call's arguments,
  evaluated with the target's module globals plus ``np``/``numpy``/``math``
  in scope.  A ``tuple`` is the positional arguments; a ``dict`` with keys
  ``args`` and/or ``kwargs`` is both; anything else is the single positional
  argument (so a single tuple argument is written ``((1, 2),)``);
- :func:`examples_from_store`: the captured inputs of a phasm capture store,
  replayed as calls (variables bound to arguments).

Example
-------
>>> import numpy as np
>>> parse_example("(np.zeros(3), 2.0)", {"np": np})[0][1]
2.0
>>> parse_example("dict(args=(1,), kwargs={'k': 2})", {})
((1,), {'k': 2})
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from phasm.errors import TargetError


def load_target(target: str) -> Callable[..., Any]:
    """The function named by ``module:function`` or ``file.py:function``."""
    modname, sep, qualname = target.partition(":")
    if not sep or not modname or not qualname:
        raise TargetError(f"target must look like 'module:function' or 'file.py:function', got {target!r}")
    if modname.endswith(".py") or os.sep in modname:
        path = Path(modname).resolve()
        if not path.is_file():
            raise TargetError(f"target file {modname!r} does not exist")
        name = path.stem
        if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
            module = sys.modules[name]
        else:
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise TargetError(f"cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            sys.path.insert(0, str(path.parent))
            spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(modname)
        except ImportError as exc:
            raise TargetError(f"cannot import module {modname!r}: {exc}") from None
    obj: Any = module
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(f"module {module.__name__!r} has no attribute {qualname!r}") from None
    if not callable(obj):
        raise TargetError(f"{target!r} is a {type(obj).__name__}, not a function")
    return obj


def namespace_for(fn: Callable[..., Any]) -> dict[str, Any]:
    """Names an example expression may use: the function's module globals, numpy, math."""
    module = sys.modules.get(getattr(fn, "__module__", ""), None)
    ns = dict(vars(module)) if module is not None else {}
    ns.update({"np": np, "numpy": np, "math": math})
    return ns


def parse_example(expr: str, namespace: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
    """``(args, kwargs)`` from an example expression (see the module docstring)."""
    try:
        value = eval(expr, dict(namespace))  # noqa: S307 - the user's own example, like running their code
    except Exception as exc:  # noqa: BLE001
        raise TargetError(f"--example {expr!r} failed to evaluate: {type(exc).__name__}: {exc}") from None
    if isinstance(value, dict) and value and set(value) <= {"args", "kwargs"}:
        args = value.get("args", ())
        kwargs = value.get("kwargs", {})
        if not isinstance(args, (tuple, list)) or not isinstance(kwargs, dict):
            raise TargetError(f"--example {expr!r}: 'args' must be a tuple and 'kwargs' a dict, "
                              f"got {type(args).__name__} and {type(kwargs).__name__}")
        return tuple(args), dict(kwargs)
    if isinstance(value, tuple):
        return value, {}
    return (value,), {}


def examples_from_store(path: str | os.PathLike[str], rows: int = 3) -> tuple[str, list[tuple[tuple, dict[str, Any]]]]:
    """``(function name, [(args, kwargs), ...])`` from the first ``rows`` rows of a capture store."""
    from phasm.store import CaptureStore

    store = CaptureStore(path)
    spec = store.spec
    if spec is None:
        raise TargetError(f"capture store {path} holds no spec: it cannot be replayed as calls")
    n = min(rows, len(store))
    if n == 0:
        raise TargetError(f"capture store {path} has no rows to replay")
    inputs, _ = store.read(0, n)
    calls = []
    for i in range(n):
        kwargs: dict[str, Any] = {}
        for v in spec.inputs:
            record = v.recorded_optic or {}  # a store's spec has optic records (text), never optics
            if record.get("kind") != "arg" or not isinstance(record.get("name"), str):
                raise TargetError(f"variable {v.name!r} of {path} lives at {v.where or '?'}, not in an argument: "
                                  "it cannot be replayed as a call; use --example")
            assert v.name is not None  # a spec names every variable
            value = inputs[v.name][i]
            if isinstance(value, np.ndarray) and value.shape == () or np.isscalar(value):
                value = np.asarray(value).item()
            else:
                value = np.array(value)
            kwargs[record["name"]] = value
        calls.append(((), kwargs))
    return spec.function, calls
