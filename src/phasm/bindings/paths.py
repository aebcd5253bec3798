"""Optics into objects: attribute paths, items, getter/setter pairs and module globals.

A :class:`Path` starts at a root (an argument, the return value, or a module
global) and walks steps: ``.name`` (attribute), ``[key]`` (item) and
``get/set`` (a getter/setter method pair, for encapsulated classes).  Paths
are written as strings:

``"track.momentum.x"``
    attribute ``momentum.x`` of the argument ``track``
``"hits[0].e"``, ``"cfg['alpha']"``
    items, then attributes
``"return.slope"``, ``"return[1]"``
    an attribute or item of the return value
``"global:physics.constants.C"`` (or ``"physics.constants:C"``)
    a module-level name (module ``physics.constants``, name ``C``)

Writing (``put``) into the return value builds it: a returned object of a
class you name is constructed with ``cls(**fields)`` once every output is in
(:func:`finish_frame`), dicts and tuples likewise.

Example
-------
>>> from types import SimpleNamespace as NS
>>> frame = CallFrame({"track": NS(momentum=NS(x=1.5))})
>>> p = Path.parse("track.momentum.x")
>>> p, p.get(frame)
(track.momentum.x, 1.5)
>>> p.put(frame, 2.5); frame.args["track"].momentum.x
2.5
"""

from __future__ import annotations

import operator
import re
from typing import Any, Callable, Sequence

import numpy as np

from phasm.bindings.build import Global, ReturnBuilder, check_class, class_ref, finish_frame
from phasm.bindings.optics import Arg, CallFrame, Optic, OpticError, Return

__all__ = ["Global", "Path", "ReturnBuilder", "class_ref", "finish_frame"]

# -- steps ----------------------------------------------------------------------------

_TOKEN = re.compile(r"""\.\s*([A-Za-z_]\w*)|\[\s*(-?\d+|'[^']*'|"[^"]*")\s*\]""")


def _step_repr(step: tuple[str, Any]) -> str:
    op, key = step
    if op == "attr":
        return f".{key}"
    if op == "item":
        return f"[{key!r}]"
    return f".{key[0]}()/{key[1]}()"


def _root_repr(root: Optic) -> str:
    return root.name if isinstance(root, Arg) else repr(root)


class Path(Optic):
    """A root optic (argument, return value, global) followed by attribute/item/accessor steps.

    ``steps``: ``("attr", name)``, ``("item", key)`` or ``("call", (getter, setter))``.
    ``classes``: for write-back into a return value, the class to construct at
    each depth (``classes[0]`` for the root's value, ``classes[i]`` for the
    value reached by step ``i``); ``None`` where not needed.  Class objects,
    never names.
    """

    kind = "path"

    def __init__(self, root: Optic, steps: Sequence[tuple[str, Any]] = (), classes: Sequence[Any] = ()) -> None:
        if isinstance(root, Path):
            steps = [*root.steps, *steps]
            classes = [*root.classes, *([None] * (len(root.steps) + 1 - len(root.classes))), *classes][: len(steps) + 1]
            root = root.root
        if not isinstance(root, (Arg, Return, Global)):
            raise OpticError(f"a path starts at an argument, the return value or a global, got {root!r}")
        self.root: Arg | Return | Global = root
        self.steps: tuple[tuple[str, Any], ...] = tuple(
            (op, tuple(key) if op == "call" else key) for op, key in steps
        )
        for op, key in self.steps:
            if op not in ("attr", "item", "call"):
                raise OpticError(f"unknown path step {op!r} (expected attr, item or call)")
        cl = [check_class(c, f"path {root!r}") for c in classes]
        self.classes: tuple[type | None, ...] = tuple(cl + [None] * (len(self.steps) + 1 - len(cl)))
        self._compile()

    # -- parsing --------------------------------------------------------------

    @classmethod
    def parse(cls, text: str, *, classes: Sequence[Any] = ()) -> "Path":
        """Parse ``"arg.attr[key]..."``, ``"return..."`` or ``"global:module.name..."``."""
        if not isinstance(text, str) or not text.strip():
            raise OpticError(f"a path must be a non-empty string such as 'track.momentum.x', got {text!r}")
        s = text.strip()
        if s.startswith("global:") or (":" in s and not s.startswith("return")):
            body = s[len("global:"):] if s.startswith("global:") else s
            if ":" in body:
                module, _, rest = body.partition(":")
                m = re.match(r"[A-Za-z_]\w*", rest)
                if not m:
                    raise OpticError(f"path {text!r}: expected a name after {module + ':'!r}")
                root: Optic = Global(module, m.group(0))
                tail = rest[m.end():]
            else:
                parts = body.split(".")
                if len(parts) < 2:
                    raise OpticError(f"global path {text!r} must name a module and a variable, e.g. 'global:mod.NAME'")
                root, tail = Global(".".join(parts[:-1]), parts[-1]), ""
        else:
            m = re.match(r"[A-Za-z_]\w*", s)
            if not m:
                raise OpticError(f"path {text!r} must start with an argument name, 'return' or 'global:'")
            head, tail = m.group(0), s[m.end():]
            root = Return() if head == "return" else Arg(head)
        steps: list[tuple[str, Any]] = []
        pos = 0
        while pos < len(tail):
            m = _TOKEN.match(tail, pos)
            if not m:
                raise OpticError(f"path {text!r}: cannot parse {tail[pos:]!r} (expected .name or [key])")
            if m.group(1) is not None:
                steps.append(("attr", m.group(1)))
            else:
                raw = m.group(2)
                steps.append(("item", raw[1:-1] if raw[0] in "'\"" else int(raw)))
            pos = m.end()
        return cls(root, steps, classes)

    def then(self, op: str, key: Any, cls: Any = None) -> "Path":
        """This path extended by one step."""
        return Path(self.root, [*self.steps, (op, key)], [*self.classes, cls])

    # -- reading ------------------------------------------------------------------

    def _compile(self) -> None:
        root, steps = self.root, self.steps
        fast: Callable[[Any], Any] | None = None
        if steps and all(op == "attr" for op, _ in steps):
            fast = operator.attrgetter(".".join(k for _, k in steps))
        elif len(steps) == 1 and steps[0][0] == "item":
            fast = operator.itemgetter(steps[0][1])
        elif not steps:
            fast = lambda o: o  # noqa: E731
        self._fast = fast
        self._fast_put = self._compile_put()
        if isinstance(root, Arg) and fast is not None:
            name = root.name
            self._fast_frame: Callable[[CallFrame], Any] | None = lambda fr: fast(fr.args[name])  # type: ignore[misc]
        elif isinstance(root, Return) and root.key is None and fast is not None:
            self._fast_frame = lambda fr: fast(fr.result)  # type: ignore[misc]
        else:
            self._fast_frame = None

    def get(self, frame: CallFrame) -> Any:
        f = self._fast_frame
        if f is not None:
            try:
                return f(frame)
            except Exception:
                pass  # diagnose below, step by step
        obj = self.root.get(frame)
        for i, step in enumerate(self.steps):
            obj = self._step(obj, step, i)
        return obj

    def get_from(self, obj: Any) -> Any:
        """Walk the steps from ``obj`` (the root's value)."""
        if self._fast is not None:
            try:
                return self._fast(obj)
            except Exception:
                pass
        for i, step in enumerate(self.steps):
            obj = self._step(obj, step, i)
        return obj

    def _where(self, i: int) -> str:
        return _root_repr(self.root) + "".join(_step_repr(s) for s in self.steps[:i])

    def _step(self, obj: Any, step: tuple[str, Any], i: int) -> Any:
        op, key = step
        if op == "attr":
            try:
                return getattr(obj, key)
            except AttributeError:
                raise OpticError(
                    f"path {self!r}: {self._where(i)} is a {type(obj).__name__} without attribute {key!r}"
                ) from None
        if op == "item":
            try:
                return obj[key]
            except (KeyError, IndexError, TypeError) as exc:
                raise OpticError(
                    f"path {self!r}: {self._where(i)} (a {type(obj).__name__}) has no item {key!r} ({type(exc).__name__})"
                ) from None
        getter = getattr(obj, key[0], None)
        if not callable(getter):
            raise OpticError(f"path {self!r}: {self._where(i)} is a {type(obj).__name__} without getter method {key[0]!r}()")
        return getter()

    def get_batch(self, frames: Sequence[CallFrame], dtype: Any = np.float64) -> np.ndarray:
        """Values of a batch of calls as one array ``(n, *shape)``."""
        f = self._fast_frame
        if f is not None:
            try:
                if np.dtype(dtype).kind in "biuf":
                    vals = [f(fr) for fr in frames]
                    if not vals or np.isscalar(vals[0]):
                        return np.fromiter(vals, dtype, count=len(vals))
                    return np.asarray(vals, dtype)
            except Exception:
                pass
        return np.asarray([self.get(fr) for fr in frames], dtype)

    # -- writing ------------------------------------------------------------------

    def _compile_put(self) -> Callable[[CallFrame, Any], None] | None:
        """A fast writer for the common cases (attribute paths from an argument, one attribute of the return value)."""
        root, steps = self.root, self.steps
        if not steps or not all(op == "attr" for op, _ in steps):
            return None
        last = steps[-1][1]
        if isinstance(root, Arg):
            name = root.name
            if len(steps) == 1:
                return lambda fr, v: setattr(fr.args[name], last, v)
            parent = operator.attrgetter(".".join(k for _, k in steps[:-1]))
            return lambda fr, v: setattr(parent(fr.args[name]), last, v)
        if isinstance(root, Return) and root.key is None and len(steps) == 1:
            def put_return(fr: CallFrame, v: Any) -> None:
                r = fr.result
                if r is None:
                    r = fr.result = self._new(0, steps[0])
                if type(r) is ReturnBuilder:
                    r.fields[last] = v
                else:
                    setattr(r, last, v)
            return put_return
        return None

    def put(self, frame: CallFrame, value: Any, **kw: Any) -> None:
        fp = self._fast_put
        if fp is not None:
            try:
                fp(frame, value)
                return
            except Exception:
                pass  # nothing was written (setattr is the last step): diagnose below
        if not self.steps:
            self.root.put(frame, value, **kw)
            return
        obj = self._put_root(frame)
        for i, step in enumerate(self.steps[:-1]):
            obj = self._child_for_put(obj, step, i)
        self._set(obj, self.steps[-1], value, len(self.steps) - 1)

    def put_batch(self, frames: Sequence[CallFrame], values: Any, **kw: Any) -> None:
        """Write row ``i`` of ``values`` into call ``i``."""
        if len(values) != len(frames):
            raise OpticError(f"path {self!r}: {len(values)} values for {len(frames)} calls")
        rows = values.tolist() if isinstance(values, np.ndarray) and values.ndim == 1 else values
        for fr, v in zip(frames, rows):
            self.put(fr, v, **kw)

    def _new(self, depth: int, step: tuple[str, Any] | None) -> ReturnBuilder:
        cls = self.classes[depth] if depth < len(self.classes) else None
        if cls is not None:
            return ReturnBuilder(cls)
        if step is not None and step[0] == "item":
            return ReturnBuilder(tuple if isinstance(step[1], int) else dict)
        raise OpticError(
            f"path {self!r}: cannot build {self._where(depth)} on write-back: its class is unknown; "
            "give cls= (e.g. phasm.attr('return.x', cls=Result)) or use phasm.fields('return', Result)"
        )

    def _put_root(self, frame: CallFrame) -> Any:
        root = self.root
        if isinstance(root, Return) and root.key is None:
            if frame.result is None:
                frame.result = self._new(0, self.steps[0])
            return frame.result
        return root.get(frame)

    def _child_for_put(self, obj: Any, step: tuple[str, Any], i: int) -> Any:
        if isinstance(obj, ReturnBuilder):
            child = obj.fields.get(step[1])
            if child is None:
                child = obj.fields[step[1]] = self._new(i + 1, self.steps[i + 1])
            return child
        return self._step(obj, step, i)

    def _set(self, obj: Any, step: tuple[str, Any], value: Any, i: int) -> None:
        op, key = step
        if isinstance(obj, ReturnBuilder):
            if op == "call":
                raise OpticError(f"path {self!r}: cannot call setter {key[1]!r} on an object still being built")
            obj.fields[key] = value
            return
        try:
            if op == "attr":
                setattr(obj, key, value)
            elif op == "item":
                obj[key] = value
            else:
                setter = getattr(obj, key[1], None)
                if not callable(setter):
                    raise OpticError(
                        f"path {self!r}: {self._where(i)} is a {type(obj).__name__} without setter method {key[1]!r}()"
                    )
                setter(value)
        except (AttributeError, TypeError, KeyError, IndexError) as exc:
            raise OpticError(f"path {self!r}: cannot write {self._where(i)}{_step_repr(step)}: {exc}") from None

    # -- identity -------------------------------------------------------------------

    @property
    def root_argument(self) -> str | None:
        return self.root.root_argument

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": self.kind,
            "root": self.root.to_json(),
            "steps": [[op, list(key) if op == "call" else key] for op, key in self.steps],
        }
        if any(c is not None for c in self.classes):
            d["classes"] = [class_ref(c) for c in self.classes]
        return d

    def __repr__(self) -> str:
        return _root_repr(self.root) + "".join(_step_repr(s) for s in self.steps)
