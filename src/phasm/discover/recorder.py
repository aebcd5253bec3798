"""The recorder: where traced stand-ins report their accesses, by path.

One recorder is active at a time (``with rec:``); the stand-ins of
:mod:`phasm.discover.tracing` and :mod:`phasm.discover.tracearray` check
``recorder.ACTIVE`` and are plain pass-throughs when it is ``None``.
Tracing is not thread-safe.

Example
-------
>>> rec = Recorder()
>>> rec.read((("arg", "x"),), 1.0)
>>> rec.accesses[(("arg", "x"),)].kind
'in'
"""

from __future__ import annotations

from typing import Any

from phasm.discover.paths import Access, Path

ACTIVE: "Recorder | None" = None  # the recorder traced stand-ins report to (None: they pass through)


class Recorder:
    """Collects :class:`Access` records by path while it is active (``with rec:``)."""

    def __init__(self) -> None:
        self.accesses: dict[Path, Access] = {}

    def access(self, path: Path) -> Access:
        acc = self.accesses.get(path)
        if acc is None:
            acc = self.accesses[path] = Access(path)
        return acc

    def read(self, path: Path, value: Any = None) -> None:
        acc = self.access(path)
        acc.on_read()
        if value is not None and not acc.shapes:
            acc.observe(value)

    def write(self, path: Path, value: Any = None) -> None:
        self.access(path).on_write()

    def touch(self, path: Path, value: Any = None) -> None:
        acc = self.access(path)
        acc.touched = True
        if value is not None and not acc.shapes and acc.type_name is None:
            acc.observe(value)

    def __enter__(self) -> "Recorder":
        global ACTIVE
        self._previous = ACTIVE
        ACTIVE = self
        return self

    def __exit__(self, *exc: Any) -> None:
        global ACTIVE
        ACTIVE = self._previous
