"""The bytecode line tracer and the unsafe-call interceptors of the dynamic analysis.

:class:`LineTracer` is a ``sys.settrace`` function for the user's code only
(the function's package): on the first execution of each line it reads the
line's bytecode and logs loads of parameters (``LOAD_FAST``), module globals
(``LOAD_GLOBAL``), global stores (``STORE_GLOBAL``) and closure loads and
stores; once every such line of a code object has run, it stops tracing that
code.  While the traced call runs, :meth:`LineTracer.intercept` wraps a short
list of well-known unsafe callables (``print``, ``open``, clocks,
``subprocess``, sockets) so that calls made from the user's code are logged.

Example
-------
>>> import sys
>>> from phasm.discover.recorder import Recorder
>>> def f(x, y):
...     return x
>>> rec = Recorder()
>>> tracer = LineTracer(rec, f, lambda filename: True, {"x": 1.0, "y": 2.0})
>>> sys.settrace(tracer.on_call); _ = f(1.0, 2.0); sys.settrace(None)
>>> sorted(p[0][1] for p in rec.accesses)
['x']
"""

from __future__ import annotations

import dis
import os
import sys
import types
from typing import Any, Callable

from phasm.discover import recorder as _rec
from phasm.discover.paths import Path, is_scalar
from phasm.discover.scope import is_data
from phasm.discover.recorder import Recorder
from phasm.discover.unsafe import classify

_MISSING = object()


def _nested_codes(code: types.CodeType) -> set[types.CodeType]:
    out = {code}
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            out |= _nested_codes(c)
    return out


class LineTracer:
    """sys.settrace / sys.setprofile callbacks: bytecode-level loads and stores, unsafe calls."""

    _OPS = {"LOAD_FAST", "LOAD_DEREF", "LOAD_CLOSURE", "STORE_FAST", "STORE_DEREF", "DELETE_FAST",
            "LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_CLASSDEREF"}

    def __init__(self, rec: Recorder, fn: Any, in_scope: Callable[[str], bool], args: dict[str, Any]) -> None:
        self.rec = rec
        self.in_scope = in_scope
        self.targets = _nested_codes(fn.__code__)
        self.freevars = set(fn.__code__.co_freevars)
        self.args = args
        self.rebound: set[str] = set()
        self.seen: set[tuple[types.CodeType, int]] = set()
        self.pending: dict[types.CodeType, set[int]] = {}
        self.lines: dict[types.CodeType, dict[int, list[tuple[str, Any]]]] = {}
        self.scope: dict[types.CodeType, bool] = {}
        self.flags: list[tuple[str, str, str]] = []
        self._flagged: set[tuple[str, str]] = set()

    def _in_scope(self, code: types.CodeType) -> bool:
        hit = self.scope.get(code)
        if hit is None:
            hit = self.scope[code] = code in self.targets or self.in_scope(code.co_filename)
        return hit

    def on_call(self, frame: Any, event: str, arg: Any) -> Any:
        code = frame.f_code
        if event == "call" and self._in_scope(code):
            pending = self.pending.get(code)
            if pending is None:
                pending = self.pending[code] = set(self._by_line(code))
            return self.on_line if pending else None
        return None

    def on_line(self, frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            key = (frame.f_code, frame.f_lineno)
            if key not in self.seen:
                self.seen.add(key)
                pending = self.pending.get(frame.f_code)
                if pending is not None:
                    pending.discard(frame.f_lineno)
                saved, _rec.ACTIVE = _rec.ACTIVE, None  # our own bookkeeping is not the program's access
                try:
                    self._line(frame, key)
                finally:
                    _rec.ACTIVE = saved
                if not pending:
                    return None  # every line with a load/store of interest seen: stop tracing this frame
        return self.on_line

    def _by_line(self, code: types.CodeType) -> dict[int, list[tuple[str, Any]]]:
        table = self.lines.get(code)
        if table is None:
            table = {}
            for ins in dis.get_instructions(code):
                if ins.opname in self._OPS and ins.positions is not None and ins.positions.lineno is not None:
                    table.setdefault(ins.positions.lineno, []).append((ins.opname, ins.argval))
            self.lines[code] = table
        return table

    def _line(self, frame: Any, key: tuple[types.CodeType, int]) -> None:
        code, line = key
        is_target = code in self.targets
        module = frame.f_globals.get("__name__", "?")
        path: Path
        for op, name in self._by_line(code).get(line, ()):
            if op == "LOAD_GLOBAL":
                if name[:2] == "__" == name[-2:]:
                    continue  # __name__, __file__: the module's own bookkeeping, not data
                value = frame.f_globals.get(name, _MISSING)
                if value is not _MISSING and is_data(value):
                    path = (("global", module, name),)
                    if is_scalar(value) or isinstance(value, str):
                        self.rec.read(path, value)
                    else:
                        self.rec.touch(path, value)
                    self.rec.access(path).lines.add(f"{os.path.basename(code.co_filename)}:{line}")
            elif op in ("STORE_GLOBAL", "DELETE_GLOBAL"):
                path = (("global", module, name),)
                self.rec.write(path)
                self.rec.access(path).lines.add(f"{os.path.basename(code.co_filename)}:{line}")
            elif not is_target:
                continue
            elif name in self.args and name not in self.rebound:
                path = (("arg", name),)
                if op.startswith("STORE") or op.startswith("DELETE"):
                    if self.rec.accesses.get(path) is None or self.rec.accesses[path].first is None:
                        self.rebound.add(name)
                elif is_scalar(self.args[name]) or isinstance(self.args[name], str):
                    self.rec.read(path, self.args[name])
                else:
                    self.rec.touch(path, self.args[name])
            elif name in self.freevars and code is not None:
                path = (("closure", name),)
                if op.startswith("STORE"):
                    self.rec.write(path)
                else:
                    value = frame.f_locals.get(name)
                    if is_scalar(value):
                        self.rec.read(path, value)
                    else:
                        self.rec.touch(path, value)

    def intercept(self) -> None:
        """Wrap the well-known unsafe callables so that calls from user code are logged."""
        import importlib

        self._patched: list[tuple[Any, str, Any]] = []
        for qual in _INTERCEPT:
            mod_name, _, attr = qual.rpartition(".")
            try:
                module = importlib.import_module(mod_name)
                original = getattr(module, attr)
            except (ImportError, AttributeError):
                continue
            setattr(module, attr, self._wrapper(qual, original))
            self._patched.append((module, attr, original))

    def release(self) -> None:
        for module, attr, original in reversed(getattr(self, "_patched", [])):
            setattr(module, attr, original)
        self._patched = []

    def _wrapper(self, qual: str, original: Any) -> Any:
        flag = classify("builtins.print" if qual == "builtins.print" else qual)
        tracer = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1)
            if flag is not None and tracer._in_scope(caller.f_code) and (flag, qual) not in tracer._flagged:
                tracer._flagged.add((flag, qual))
                tracer.flags.append((flag, qual, f"{os.path.basename(caller.f_code.co_filename)}:{caller.f_lineno}"))
            return original(*args, **kwargs)

        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
        return wrapper


# Unsafe callables wrapped during the traced call (others are found statically).
_INTERCEPT = (
    "builtins.print", "builtins.open", "builtins.input", "io.open",
    "time.time", "time.time_ns", "time.perf_counter", "time.monotonic", "time.process_time", "time.sleep",
    "os.system", "os.popen", "os.remove", "os.unlink", "os.makedirs", "os.mkdir", "os.rename", "os.getenv",
    "subprocess.run", "subprocess.Popen", "subprocess.call", "subprocess.check_call", "subprocess.check_output",
    "socket.socket", "socket.create_connection",
)
