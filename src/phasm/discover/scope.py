"""Which code is the user's, and which module globals are data.

Both analyses look only into the user's code -- the package the inspected
function belongs to (or its folder, for a loose module), never the standard
library, site-packages or phasm itself -- and treat as data only globals that
are not modules, classes, functions or other callables.

Example
-------
>>> import numpy as np
>>> is_data(np.zeros(3)), is_data(np.zeros), is_data(3.0)
(True, False, True)
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any, Callable


def in_scope_predicate(fn: Callable[..., Any]) -> Callable[[str], bool]:
    """Which source files count as the user's code: the function's package (or its folder)."""
    module = sys.modules.get(fn.__module__)
    top = (fn.__module__ or "").split(".")[0]
    top_mod = sys.modules.get(top)
    roots: list[str] = []
    if top_mod is not None and getattr(top_mod, "__path__", None):
        roots = [os.path.realpath(p) for p in top_mod.__path__]
    else:
        f = getattr(module, "__file__", None) or fn.__code__.co_filename
        folder = os.path.dirname(os.path.realpath(f))
        installed = any(folder == p or folder.startswith(p + os.sep) for p in _install_dirs())
        # A single installed module (the standard library's random.py): that file, not its whole folder.
        roots = [os.path.realpath(f)] if installed or "site-packages" in folder or "dist-packages" in folder \
            else [folder]
    excluded = [os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)]
    own = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # phasm itself is never user code
    cache: dict[str, bool] = {}

    def in_scope(filename: str) -> bool:
        hit = cache.get(filename)
        if hit is None and filename.startswith("<"):  # <frozen ...>, <string>: not a file of the user's
            hit = cache[filename] = False
        if hit is None:
            real = os.path.realpath(filename)
            hit = any(real == r or real.startswith(r + os.sep) for r in roots) and not any(
                real.startswith(e + os.sep) and not any(r.startswith(e + os.sep) for r in roots) for e in excluded
            )
            hit = hit and not real.startswith(own + os.sep)
            cache[filename] = hit
        return hit

    return in_scope


def _install_dirs() -> list[str]:
    """Where Python and installed packages live (the standard library, site-packages)."""
    import sysconfig

    paths = {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    return [os.path.realpath(p) for p in paths if p]


def is_data(value: Any) -> bool:
    """A global worth tracking as data (not a module, function, class or other callable)."""
    return not (
        isinstance(value, (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType,
                           types.MethodType, classmethod, staticmethod, property))
        or callable(value)
    )
