"""What static analysis collects, and what a name in a function's source refers to.

:class:`StaticResult` is the record :func:`~phasm.discover.static.analyze_static`
fills.  :class:`NameResolver` knows one function's environment (parameters
mapped to data paths, locals, ``global`` declarations, module globals, closure
cells) and turns an expression such as ``state.grid.dx``, ``cfg['dt']`` or
``mod.TABLE`` into the data path it names, or a called expression into the
dotted name of what it calls.

Example
-------
>>> import ast
>>> def f(state):
...     return state.grid.dx
>>> r = NameResolver(f, ast.parse("def f(state): pass").body[0], {"state": (("arg", "state"),)},
...                  StaticResult("f", ["state"]), lambda filename: False)
>>> r.path_of(ast.parse("state.grid.dx", mode="eval").body)
(('arg', 'state'), ('attr', 'grid'), ('attr', 'dx'))
"""

from __future__ import annotations

import ast
import builtins
import inspect
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Callable

from phasm.discover.opaque import extension_type
from phasm.discover.paths import EACH, Path
from phasm.discover.scope import is_data


@dataclass
class StaticResult:
    """What the source says a function may read, write and call."""

    function: str
    params: list[str]
    reads: dict[Path, set[str]] = field(default_factory=dict)
    writes: dict[Path, set[str]] = field(default_factory=dict)
    unsafe: list[tuple[str, str, str]] = field(default_factory=list)  # (flag, call, where)
    calls: list[str] = field(default_factory=list)
    globals_used: set[tuple[str, str]] = field(default_factory=set)
    seeded: bool = False
    notes: list[str] = field(default_factory=list)
    module: str = ""
    methods: dict[Path, dict[str, set[str]]] = field(default_factory=dict)  # owner path -> method -> where
    handed: dict[Path, set[tuple[str, str]]] = field(default_factory=dict)  # path -> (callee, where) not followed
    opaque: dict[Path, str] = field(default_factory=dict)  # global/closure object path -> its extension type

    def add(self, table: str, path: Path, where: str) -> None:
        getattr(self, table).setdefault(path, set()).add(where)


class NameResolver:
    """One function's names: which are parameters (as data paths), locals, globals, closure cells."""

    def __init__(self, fn: Any, node: Any, mapping: dict[str, Path | None], result: StaticResult,
                 in_scope: Callable[[str], bool]) -> None:
        self.fn = fn
        self.globals = fn.__globals__
        self.closure: dict[str, Any] = {}
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            try:
                self.closure[name] = cell.cell_contents
            except ValueError:  # an empty cell
                pass
        self.module = fn.__module__
        self.result = result
        self.in_scope = in_scope
        self.aliases: dict[str, Path | None] = dict(mapping)
        args = node.args
        self.params = [a.arg for a in (args.posonlyargs + args.args + args.kwonlyargs)]
        if args.vararg:
            self.params.append(args.vararg.arg)
        if args.kwarg:
            self.params.append(args.kwarg.arg)
        self.global_decl: set[str] = set()
        self.locals: set[str] = set(self.params)
        for sub in ast.walk(node):
            if isinstance(sub, ast.Global):
                self.global_decl.update(sub.names)
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                self.locals.add(sub.id)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                self.locals.update((a.asname or a.name).split(".")[0] for a in sub.names)
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and sub is not node:
                self.locals.add(sub.name)
        self.locals -= self.global_decl

    def chain(self, node: ast.AST) -> tuple[str, list[tuple]] | None:
        """``state.grid[0].dx`` -> ``("state", [attr grid, item 0, attr dx])``; ``None`` if not a name chain."""
        steps: list[tuple] = []
        while True:
            if isinstance(node, ast.Attribute):
                steps.append(("attr", node.attr))
                node = node.value
            elif isinstance(node, ast.Subscript):
                sl = node.slice
                if isinstance(sl, ast.Constant) and isinstance(sl.value, (str, int)):
                    steps.append(("item", sl.value))
                else:
                    steps.append(EACH)
                node = node.value
            elif isinstance(node, ast.Name):
                return node.id, steps[::-1]
            else:
                return None

    def resolve(self, name: str) -> tuple[str, Any]:
        """('path', Path) | ('local', None) | ('object', value) | ('unknown', None)."""
        if name in self.aliases and name not in self.global_decl:
            path = self.aliases[name]
            return ("path", path) if path is not None else ("local", None)
        if name in self.locals:
            return "local", None
        if name in self.closure and name not in self.global_decl:
            value = self.closure[name]
            return ("path", (("closure", name),)) if is_data(value) else ("object", value)
        if name in self.global_decl or name in self.globals:
            value = self.globals.get(name)
            if name in self.global_decl or is_data(value):
                self.result.globals_used.add((self.module, name))
                return "path", (("global", self.module, name),)
            return "object", value
        if hasattr(builtins, name):
            return "object", getattr(builtins, name)
        return "unknown", None

    def path_of(self, node: ast.AST) -> Path | None:
        """The data path an expression names, if it is rooted in a parameter or a global."""
        chain = self.chain(node)
        if chain is None:
            return None
        name, steps = chain
        kind, base = self.resolve(name)
        if kind == "path":
            return base + tuple(steps)
        if kind == "object" and isinstance(base, types.ModuleType) and steps and steps[0][0] == "attr":
            mod = base
            for i, step in enumerate(steps):
                if step[0] != "attr":
                    return None
                value = getattr(mod, step[1], None)
                if isinstance(value, types.ModuleType):
                    mod = value
                    continue
                f = getattr(mod, "__file__", None)
                if f and self.in_scope(f) and is_data(value):
                    self.result.globals_used.add((mod.__name__, step[1]))
                    return (("global", mod.__name__, step[1]),) + tuple(steps[i + 1:])
                return None
        return None

    def qualname(self, func: ast.AST) -> tuple[str | None, Any]:
        """Dotted name of a called expression and the object it resolves to (when it does)."""
        chain = self.chain(func)
        if chain is None:
            return None, None
        name, steps = chain
        if any(s[0] != "attr" for s in steps):
            return None, None
        kind, base = self.resolve(name)
        attrs = [s[1] for s in steps]
        if kind == "path" and base is not None and base[0][0] in ("global", "closure"):
            value = self.globals.get(base[0][2]) if base[0][0] == "global" else self.closure.get(base[0][1])
            t = type(value)
            return ".".join([t.__module__, t.__qualname__] + attrs[len(base) - 1:]), None
        if kind != "object":
            return None, None
        obj = base
        for a in attrs:
            obj = getattr(obj, a, None)
        if isinstance(base, types.ModuleType):
            root = base.__name__
        elif base is not None and hasattr(base, "__qualname__"):
            root = f"{getattr(base, '__module__', None) or 'builtins'}.{base.__qualname__}"
        else:
            return None, obj
        return ".".join([root] + attrs), obj

    def note_opaque(self, path: Path) -> None:
        """Record the object of a compiled extension type at (or above) ``path``, for a global or closure value."""
        root = path[0]
        if root[0] == "global":
            module = sys.modules.get(root[1])
            if module is None:
                return
            value = module.__dict__.get(root[2])
        elif root[0] == "closure":
            value = self.closure.get(root[1])
        else:
            return
        for i, step in enumerate(path[1:] + (("end",),), start=1):
            kind = extension_type(value)
            if kind is not None:
                self.result.opaque.setdefault(path[:i], kind)
                return
            if step[0] != "attr":
                return
            try:
                value = inspect.getattr_static(value, step[1])
            except AttributeError:
                return
            if hasattr(type(value), "__get__"):  # a property, slot or method: not a stored object
                return


__all__ = ["NameResolver", "StaticResult"]
