"""Static interface analysis: what a function may read and write, from its source.

Walks the syntax tree (``ast``) of a function, and of the functions it calls
that live in the user's code (to ``depth`` levels), resolving names through
the function's globals.  It reports:

- reads and writes of parameters down attribute chains (``track.p.x``),
  items (``cfg['dt']``) and elements (``hits[*].x``, through ``for h in hits``
  and comprehensions), also through simple aliases (``a = p.x``,
  ``a = np.asarray(p)``) and through the arguments of called helpers;
- reads and writes of module globals (``global X``; attribute, item and
  mutating-method writes on a global object);
- calls that make the function unsafe to replace (:mod:`phasm.discover.unsafe`).

Static analysis sees every branch, including the ones an example does not
take; it cannot see through dynamic dispatch (``getattr``, methods of
parameters).  :mod:`phasm.discover.analyze` combines it with the dynamic
trace and reports where they disagree.

Example
-------
>>> from phasm.discover.paths import render
>>> def step(state, dt):
...     state.x += state.v * dt
>>> res = analyze_static(step)
>>> sorted(render(p) for p in res.writes)
['state.x']
"""

from __future__ import annotations

import ast
import builtins
import inspect
import os
import textwrap
import types
from dataclasses import dataclass, field
from typing import Any, Callable

from phasm.discover.paths import EACH, Path
from phasm.discover.scope import in_scope_predicate, is_data
from phasm.discover.unsafe import IO_METHODS, classify, is_seeding

MUTATING_METHODS = {
    "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update", "setdefault",
    "popitem", "add", "discard", "fill", "resize", "put", "itemset", "setflags", "__setitem__",
}
_NUMPY_WRITE_FIRST = {"copyto", "put", "place", "putmask", "fill_diagonal"}
_ALIASING_CALLS = {"numpy.asarray", "numpy.asanyarray", "numpy.ascontiguousarray", "numpy.asfortranarray"}


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

    def add(self, table: str, path: Path, where: str) -> None:
        getattr(self, table).setdefault(path, set()).add(where)


def _function_node(fn: Callable[..., Any]) -> tuple[ast.AST, int] | None:
    try:
        src = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(src)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return node, fn.__code__.co_firstlineno - 1
    return None


def analyze_static(fn: Callable[..., Any], depth: int = 2, *, in_scope: Callable[[str], bool] | None = None) -> StaticResult:
    """Static reads, writes and unsafe calls of ``fn`` and its in-scope callees (to ``depth``).

    >>> import numpy as np
    >>> def f(x):
    ...     print(x)
    ...     return np.random.normal() + x
    >>> sorted({flag for flag, _, _ in analyze_static(f).unsafe})
    ['io', 'random']
    """
    fn = inspect.unwrap(fn)
    fn = getattr(fn, "__func__", fn)
    params = list(inspect.signature(fn).parameters)
    result = StaticResult(f"{fn.__module__}.{fn.__qualname__}", params, module=fn.__module__)
    in_scope = in_scope or in_scope_predicate(fn)
    mapping = {p: (("arg", p),) for p in params}
    _visit_function(fn, mapping, result, depth, in_scope, set(), via=None)
    if result.seeded:
        result.unsafe = [u for u in result.unsafe if u[0] != "random"]
        result.notes.append("the function seeds the global random state itself: random calls taken as deterministic")
    return result


def _visit_function(fn: Any, mapping: dict[str, Path | None], result: StaticResult, depth: int,
                    in_scope: Callable[[str], bool], seen: set, via: str | None) -> None:
    key = (fn.__code__, tuple(sorted((k, v) for k, v in mapping.items() if v is not None)))
    if key in seen:
        return
    seen.add(key)
    found = _function_node(fn)
    if found is None:
        result.notes.append(f"no source for {fn.__module__}.{fn.__qualname__}: not analysed statically")
        return
    node, offset = found
    _Visitor(fn, node, offset, mapping, result, depth, in_scope, seen, via).run()


class _Visitor(ast.NodeVisitor):
    def __init__(self, fn: Any, node: Any, offset: int, mapping: dict[str, Path | None], result: StaticResult,
                 depth: int, in_scope: Callable[[str], bool], seen: set, via: str | None) -> None:
        self.fn = fn
        self.node = node
        self.offset = offset
        self.file = fn.__code__.co_filename
        self.globals = fn.__globals__
        self.closure: dict[str, Any] = {}
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            try:
                self.closure[name] = cell.cell_contents
            except ValueError:  # an empty cell
                pass
        self.module = fn.__module__
        self.result = result
        self.depth = depth
        self.in_scope = in_scope
        self.seen = seen
        self.via = via
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

    def run(self) -> None:
        body = self.node.body if isinstance(self.node.body, list) else [self.node.body]
        for stmt in body:
            self.visit(stmt)

    def where(self, node: ast.AST) -> str:
        line = getattr(node, "lineno", 0) + self.offset
        loc = f"{os.path.basename(self.file)}:{line}"
        return f"{loc} (in {self.via})" if self.via else loc

    # -- name resolution ------------------------------------------------------

    def _chain(self, node: ast.AST) -> tuple[str, list[tuple]] | None:
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

    def _resolve(self, name: str) -> tuple[str, Any]:
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

    def _path_of(self, node: ast.AST) -> Path | None:
        """The data path an expression names, if it is rooted in a parameter or a global."""
        chain = self._chain(node)
        if chain is None:
            return None
        name, steps = chain
        kind, base = self._resolve(name)
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

    def _qualname(self, func: ast.AST) -> tuple[str | None, Any]:
        """Dotted name of a called expression and the object it resolves to (when it does)."""
        chain = self._chain(func)
        if chain is None:
            return None, None
        name, steps = chain
        if any(s[0] != "attr" for s in steps):
            return None, None
        kind, base = self._resolve(name)
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

    # -- recording --------------------------------------------------------------

    def read(self, path: Path | None, node: ast.AST) -> None:
        if path is not None:
            self.result.add("reads", path, self.where(node))

    def write(self, path: Path | None, node: ast.AST) -> None:
        if path is not None:
            self.result.add("writes", path, self.where(node))

    # -- visitors ----------------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.read(self._path_of(node), node)

    def visit_Attribute(self, node: ast.Attribute | ast.Subscript) -> None:
        if isinstance(node.ctx, ast.Load):
            path = self._path_of(node)
            if path is not None:
                self.read(path, node)
                self._visit_subscripts(node)
                return
        self.generic_visit(node)

    visit_Subscript = visit_Attribute  # a read of x[k] is recorded like a read of x.k

    def _visit_subscripts(self, node: ast.AST) -> None:
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            if isinstance(node, ast.Subscript):
                self.visit(node.slice)
            node = node.value

    def _store(self, target: ast.AST, value: ast.AST | None, node: ast.AST) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self._store(t, None, node)
        elif isinstance(target, ast.Starred):
            self._store(target.value, None, node)
        elif isinstance(target, ast.Name):
            if target.id in self.global_decl:
                self.write((("global", self.module, target.id),), node)
                self.result.globals_used.add((self.module, target.id))
            else:
                self.aliases[target.id] = self._alias_of(value) if value is not None else None
        else:
            self.write(self._path_of(target), node)
            self._visit_subscripts(target)

    def _alias_of(self, value: ast.AST) -> Path | None:
        if isinstance(value, ast.Call) and value.args:
            qual, _ = self._qualname(value.func)
            if qual in _ALIASING_CALLS:
                return self._path_of(value.args[0])
            return None
        if isinstance(value, (ast.Name, ast.Attribute, ast.Subscript)):
            return self._path_of(value)
        return None

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for t in node.targets:
            self._store(t, node.value, node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            self._store(node.target, node.value, node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        target = node.target
        if isinstance(target, ast.Name) and target.id not in self.global_decl:
            path = self._path_of(target)
            if path is not None and path[0][0] == "arg":
                # `u += 1` on a parameter: in place if it is a mutable array.
                self.read(path, node)
                self.write(path, node)  # in place if it is a mutable array (numpy); rebinding otherwise
            return
        path = self._path_of(target)
        self.read(path, node)
        self.write(path, node)
        self._visit_subscripts(target)

    def visit_Delete(self, node: ast.Delete) -> None:
        for t in node.targets:
            if not isinstance(t, ast.Name):
                self.write(self._path_of(t), node)

    def visit_For(self, node: ast.For) -> None:
        self.visit(node.iter)
        self._bind_loop(node.target, node.iter)
        for stmt in node.body + node.orelse:
            self.visit(stmt)

    def _visit_comp(self, node: Any) -> None:
        for gen in node.generators:  # bind the loop variables before reading the element expression
            self.visit(gen)
        for part in ("key", "value", "elt"):
            if hasattr(node, part):
                self.visit(getattr(node, part))

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _visit_comp

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self.visit(node.iter)
        self._bind_loop(node.target, node.iter)
        for cond in node.ifs:
            self.visit(cond)

    def _bind_loop(self, target: ast.AST, it: ast.AST) -> None:
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "enumerate" and it.args:
            if isinstance(target, ast.Tuple) and len(target.elts) == 2:
                self._store(target.elts[0], None, target)
                target, it = target.elts[1], it.args[0]
        path = self._path_of(it)
        if isinstance(target, ast.Name):
            self.aliases[target.id] = path + (EACH,) if path is not None else None
        else:
            self._store(target, None, target)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        qual, obj = self._qualname(func)
        n_args = len(node.args) + len(node.keywords)
        where = self.where(node)
        if qual is not None:
            if is_seeding(qual) and n_args:
                self.result.seeded = True
            flag = classify(qual, n_args=n_args)
            if flag is not None:
                self.result.unsafe.append((flag, qual, where))
            if qual.startswith("numpy.") and qual.rsplit(".", 1)[-1] in _NUMPY_WRITE_FIRST and node.args:
                self.write(self._path_of(node.args[0]), node)
        if isinstance(func, ast.Attribute):
            if func.attr in IO_METHODS:
                self.result.unsafe.append(("io", f".{func.attr}()", where))
            owner = self._path_of(func.value)
            if owner is not None:
                self.read(owner, node)
                if func.attr in MUTATING_METHODS:
                    self.write(owner, node)
                self._visit_subscripts(func.value)
            else:
                self.visit(func.value)
        for kw in node.keywords:
            if kw.arg == "out":
                outs = kw.value.elts if isinstance(kw.value, ast.Tuple) else [kw.value]
                for o in outs:
                    self.write(self._path_of(o), node)
        for a in node.args:
            self.visit(a)
        for kw in node.keywords:
            self.visit(kw.value)
        if isinstance(obj, types.FunctionType) and self.depth > 0 and self.in_scope(obj.__code__.co_filename):
            self._follow(obj, node)

    def _follow(self, callee: types.FunctionType, node: ast.Call) -> None:
        name = f"{callee.__module__}.{callee.__qualname__}"
        if name not in self.result.calls:
            self.result.calls.append(name)
        try:
            sig = inspect.signature(callee)
            bound = sig.bind_partial(*[ast.Constant(None) if isinstance(a, ast.Starred) else a for a in node.args],
                                     **{kw.arg: kw.value for kw in node.keywords if kw.arg})
        except (TypeError, ValueError):
            return
        mapping: dict[str, Path | None] = {p: None for p in sig.parameters}
        for pname, expr in bound.arguments.items():
            if isinstance(expr, ast.AST):
                mapping[pname] = self._path_of(expr)
        _visit_function(callee, mapping, self.result, self.depth - 1, self.in_scope, self.seen, via=name)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:  # nested definitions: analysed when called
        return

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]
    visit_ClassDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.visit(node.body)
