"""Optics: where a model variable lives in a call, and how to put it back.

A call is seen as a :class:`CallFrame`: the bound arguments by name and the
return value.  An :class:`Optic` reads a value out of a frame (``get``) and
writes one back (``put``).  This module holds the two optics every surrogate
needs (an argument, the return value or one of its items); richer optics
(attributes, getters/setters, globals, collections) build on the same base.

Example
-------
>>> frame = CallFrame({"x": 2.0}, None)
>>> Arg("x").get(frame)
2.0
>>> Return(1).put(frame, 5.0, n_items=2); frame.result
(None, 5.0)
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Sequence

from phasm.errors import OpticError


class CallFrame:
    """The data of one call: bound arguments by name, and the return value."""

    __slots__ = ("args", "result")

    def __init__(self, args: dict[str, Any], result: Any = None) -> None:
        self.args = args
        self.result = result


class Optic:
    """Base class: a path into a call frame with ``get`` and ``put``.

    Subclasses set ``kind`` (the JSON tag) and implement ``get``, ``put``,
    ``to_json`` and ``__repr__``.  ``put`` on a frame whose return value is not
    built yet must build it.
    """

    kind: ClassVar[str] = ""
    registry: ClassVar[dict[str, Callable[[dict[str, Any]], "Optic"]]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.kind:
            Optic.registry[cls.kind] = cls.from_json  # type: ignore[assignment]

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
        raise NotImplementedError

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Optic":  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def root_argument(self) -> str | None:
        """Name of the argument this optic starts from (``None`` for the return value or a global)."""
        return None

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_json() == other.to_json()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(repr(self))


def optic_from_json(d: dict[str, Any]) -> Optic:
    try:
        factory = Optic.registry[d["kind"]]
    except KeyError:
        raise OpticError(f"unknown optic record {d!r}; known kinds: {sorted(Optic.registry)}") from None
    return factory(d)


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
        target[...] = value

    @property
    def root_argument(self) -> str:
        return self.name

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Arg":
        return cls(d["name"])

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

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Return":
        return cls(d.get("key"))

    def __repr__(self) -> str:
        return "return" if self.key is None else f"return[{self.key!r}]"
