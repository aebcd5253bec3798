"""Optics: where a model variable lives in a call, and how to put it back.

A call is seen as a :class:`CallFrame`: the bound arguments by name and the
return value.  An :class:`Optic` reads a value out of a frame (``get``) and
writes one back (``put``).  This module holds the two optics every surrogate
needs (an argument, the return value or one of its items); richer optics
(attributes, getters/setters, globals, collections) build on the same base.

Optics come only from code (declarations, or inference from a call).  An
optic's ``to_json`` record, kept in stores and model folders, describes it for
people and tools; it is never turned back into an optic: a file may not
choose what the caller's objects, modules or classes are
(:func:`describe_record` prints one without building anything).

Example
-------
>>> frame = CallFrame({"x": 2.0}, None)
>>> Arg("x").get(frame)
2.0
>>> Return(1).put(frame, 5.0, n_items=2); frame.result
(None, 5.0)
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

from phasm.errors import OpticError


class CallFrame:
    """The data of one call: bound arguments by name, and the return value."""

    __slots__ = ("args", "result")

    def __init__(self, args: dict[str, Any], result: Any = None) -> None:
        self.args = args
        self.result = result


class Optic:
    """Base class: a path into a call frame with ``get`` and ``put``.

    Subclasses set ``kind`` (the tag of their JSON record) and implement
    ``get``, ``put``, ``to_json`` and ``__repr__``.  ``put`` on a frame whose
    return value is not built yet must build it.
    """

    kind: ClassVar[str] = ""

    def get(self, frame: CallFrame) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def put(self, frame: CallFrame, value: Any, **kw: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_batch(self, frames: Sequence[CallFrame], dtype: Any = None) -> Any:
        """Values of a batch of calls stacked into one array ``(n, *shape)`` (override for speed)."""
        import numpy as np

        return np.asarray([self.get(f) for f in frames], dtype)

    def put_batch(self, frames: Sequence[CallFrame], values: Any, **kw: Any) -> None:
        """Write row ``i`` of ``values`` into call ``i``."""
        if len(values) != len(frames):
            raise OpticError(f"{self!r}: {len(values)} values for {len(frames)} calls")
        for f, v in zip(frames, values):
            self.put(f, v.item() if getattr(v, "ndim", None) == 0 else v, **kw)

    def to_json(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """A JSON record describing this optic (for files and tools; never read back into an optic)."""
        raise NotImplementedError

    @property
    def root_argument(self) -> str | None:
        """Name of the argument this optic starts from (``None`` for the return value or a global)."""
        return None

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_json() == other.to_json()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(repr(self))


class Arg(Optic):
    """A named argument of the function (positional or keyword)."""

    kind = "arg"

    def __init__(self, name: str) -> None:
        self.name = name

    def get(self, frame: CallFrame) -> Any:
        try:
            return frame.args[self.name]
        except KeyError:
            raise OpticError(f"argument {self.name!r} was not passed and has no default") from None

    def put(self, frame: CallFrame, value: Any, **kw: Any) -> None:
        # Write in place so the caller's array sees the answer (inout arrays).
        target = frame.args.get(self.name)
        if target is None or not hasattr(target, "__setitem__") or not hasattr(target, "shape"):
            raise OpticError(
                f"argument {self.name!r}: cannot write back in place into a {type(target).__name__}; "
                "in-place (inout) variables must be numpy arrays"
            )
        flags = getattr(target, "flags", None)
        if flags is not None and not flags.writeable:
            raise OpticError(f"argument {self.name!r}: expected a writeable array (an inout variable is written in "
                             "place), got a read-only one")
        target[...] = value

    @property
    def root_argument(self) -> str:
        return self.name

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name}

    def __repr__(self) -> str:
        return f"arg({self.name})"


class Return(Optic):
    """The return value (``key=None``), or an item of a returned tuple (int) or dict (str)."""

    kind = "return"

    def __init__(self, key: int | str | None = None) -> None:
        self.key = key

    def get(self, frame: CallFrame) -> Any:
        if self.key is None:
            return frame.result
        try:
            return frame.result[self.key]
        except (KeyError, IndexError, TypeError):
            raise OpticError(
                f"return value has no item {self.key!r} (returned a {type(frame.result).__name__})"
            ) from None

    def put(self, frame: CallFrame, value: Any, n_items: int | None = None, **kw: Any) -> None:
        if self.key is None:
            frame.result = value
        elif isinstance(self.key, int):
            items = list(frame.result) if isinstance(frame.result, (list, tuple)) else [None] * (n_items or self.key + 1)
            while len(items) <= self.key:
                items.append(None)
            items[self.key] = value
            frame.result = tuple(items)
        else:
            if not isinstance(frame.result, dict):
                frame.result = {}
            frame.result[self.key] = value

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key}

    def __repr__(self) -> str:
        return "return" if self.key is None else f"return[{self.key!r}]"


def describe_record(record: Any) -> str:
    """Readable text for an optic record read from a file, built from its strings alone.

    Nothing named in the record is imported, resolved or called.

    >>> describe_record({"kind": "path", "root": {"kind": "arg", "name": "track"}, "steps": [["attr", "p"], ["item", 0]]})
    'track.p[0]'
    >>> describe_record({"kind": "global", "module": "os", "name": "system"})
    'global:os.system'
    """
    try:
        text = _describe(record)
    except Exception:  # a malformed record is shown as such, never an error
        return "<unreadable optic record>"
    # Text from a file reaches terminals and reports: control characters (newlines, escapes) shown escaped.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _describe(d: Mapping[str, Any], root: bool = False) -> str:
    kind = d.get("kind")
    if kind == "arg":
        return str(d["name"]) if root else f"arg({d['name']})"
    if kind == "return":
        return "return" if d.get("key") is None else f"return[{d['key']!r}]"
    if kind == "global":
        return f"global:{d['module']}.{d['name']}"
    if kind == "path":
        text = _describe(d["root"], root=True)
        for op, key in d.get("steps", []):
            text += f".{key}" if op == "attr" else f"[{key!r}]" if op == "item" else f".{key[0]}()/{key[1]}()"
        return text
    if kind == "each":
        fields = d.get("fields")
        return f"each({_describe(d['collection'], root=True)})" + ("" if not fields else "[" + ", ".join(map(str, fields)) + "]")
    return f"<{kind} optic>"
