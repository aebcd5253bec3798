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
import inspect
import os
import textwrap
import types
from typing import Any, Callable

from phasm.discover.names import NameResolver, StaticResult
from phasm.discover.paths import EACH, Path
from phasm.discover.scope import in_scope_predicate
from phasm.discover.unsafe import IO_METHODS, classify, is_seeding

MUTATING_METHODS = {
    "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update", "setdefault",
    "popitem", "add", "discard", "fill", "resize", "put", "itemset", "setflags", "__setitem__",
}
_BUILTINS_THAT_MUTATE = {"builtins.next", "builtins.setattr", "builtins.delattr", "builtins.exec", "builtins.eval"}
_NUMPY_WRITE_FIRST = {"copyto", "put", "place", "putmask", "fill_diagonal"}
_ALIASING_CALLS = {"numpy.asarray", "numpy.asanyarray", "numpy.ascontiguousarray", "numpy.asfortranarray"}


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
    mapping: dict[str, Path | None] = {p: (("arg", p),) for p in params}
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


class _Visitor(NameResolver, ast.NodeVisitor):
    def __init__(self, fn: Any, node: Any, offset: int, mapping: dict[str, Path | None], result: StaticResult,
                 depth: int, in_scope: Callable[[str], bool], seen: set, via: str | None) -> None:
        super().__init__(fn, node, mapping, result, in_scope)
        self.node = node
        self.offset = offset
        self.file = fn.__code__.co_filename
        self.depth = depth
        self.seen = seen
        self.via = via

    def run(self) -> None:
        body = self.node.body if isinstance(self.node.body, list) else [self.node.body]
        for stmt in body:
            self.visit(stmt)

    def where(self, node: ast.AST) -> str:
        line = getattr(node, "lineno", 0) + self.offset
        loc = f"{os.path.basename(self.file)}:{line}"
        return f"{loc} (in {self.via})" if self.via else loc

    # -- recording --------------------------------------------------------------

    def read(self, path: Path | None, node: ast.AST) -> None:
        if path is not None:
            self.result.add("reads", path, self.where(node))

    def write(self, path: Path | None, node: ast.AST) -> None:
        if path is not None:
            self.result.add("writes", path, self.where(node))
            self.note_opaque(path)

    # -- visitors ----------------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.read(self.path_of(node), node)

    def visit_Attribute(self, node: ast.Attribute | ast.Subscript) -> None:
        if isinstance(node.ctx, ast.Load):
            path = self.path_of(node)
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
            self.write(self.path_of(target), node)
            self._visit_subscripts(target)

    def _alias_of(self, value: ast.AST) -> Path | None:
        if isinstance(value, ast.Call) and value.args:
            qual, _ = self.qualname(value.func)
            if qual in _ALIASING_CALLS:
                return self.path_of(value.args[0])
            return None
        if isinstance(value, (ast.Name, ast.Attribute, ast.Subscript)):
            return self.path_of(value)
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
            path = self.path_of(target)
            if path is not None and path[0][0] == "arg":
                # `u += 1` on a parameter: in place if it is a mutable array.
                self.read(path, node)
                self.write(path, node)  # in place if it is a mutable array (numpy); rebinding otherwise
            return
        path = self.path_of(target)
        self.read(path, node)
        self.write(path, node)
        self._visit_subscripts(target)

    def visit_Delete(self, node: ast.Delete) -> None:
        for t in node.targets:
            if not isinstance(t, ast.Name):
                self.write(self.path_of(t), node)

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
        path = self.path_of(it)
        if isinstance(target, ast.Name):
            self.aliases[target.id] = path + (EACH,) if path is not None else None
        else:
            self._store(target, None, target)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        qual, obj = self.qualname(func)
        n_args = len(node.args) + len(node.keywords)
        where = self.where(node)
        if qual is not None:
            if is_seeding(qual) and n_args:
                self.result.seeded = True
            flag = classify(qual, n_args=n_args)
            if flag is not None:
                self.result.unsafe.append((flag, qual, where))
            if qual.startswith("numpy.") and qual.rsplit(".", 1)[-1] in _NUMPY_WRITE_FIRST and node.args:
                self.write(self.path_of(node.args[0]), node)
        if isinstance(func, ast.Attribute):
            if func.attr in IO_METHODS:
                self.result.unsafe.append(("io", f".{func.attr}()", where))
            owner = self.path_of(func.value)
            if owner is not None:
                self.read(owner, node)
                self.result.methods.setdefault(owner, {}).setdefault(func.attr, set()).add(where)
                self.note_opaque(owner)
                if func.attr in MUTATING_METHODS:
                    self.write(owner, node)
                self._visit_subscripts(func.value)
            else:
                self.visit(func.value)
        for kw in node.keywords:
            if kw.arg == "out":
                outs = kw.value.elts if isinstance(kw.value, ast.Tuple) else [kw.value]
                for o in outs:
                    self.write(self.path_of(o), node)
        for a in node.args:
            self.visit(a)
        for kw in node.keywords:
            self.visit(kw.value)
        if isinstance(obj, types.FunctionType) and self.depth > 0 and self.in_scope(obj.__code__.co_filename):
            self._follow(obj, node)
        elif not (qual or "").startswith("builtins.") or qual in _BUILTINS_THAT_MUTATE:
            # Library code, a class, a method: what it does to the objects it is given is not analysed.
            callee = qual or (f"{ast.unparse(func)}" if isinstance(func, (ast.Name, ast.Attribute)) else "a call")
            for expr in [*node.args, *(kw.value for kw in node.keywords)]:
                path = self.path_of(expr.value if isinstance(expr, ast.Starred) else expr)
                if path is not None:
                    self.result.handed.setdefault(path, set()).add((callee, where))
                    self.note_opaque(path)

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
                mapping[pname] = self.path_of(expr)
        _visit_function(callee, mapping, self.result, self.depth - 1, self.in_scope, self.seen, via=name)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:  # nested definitions: analysed when called
        return

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]
    visit_ClassDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.visit(node.body)
