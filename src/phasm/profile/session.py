"""The profile data model: frames, weighted stacks, on-CPU and off-CPU time.

A :class:`Session` is what every sampler produces and every renderer and the
ranking read: a frame table and, per (thread, stack), the seconds spent
on-CPU and off-CPU (waiting: I/O, locks, sleep). Samplers differ; the data
model does not. Sessions merge, save to and load from JSON (no pickle).

Example
-------
>>> from phasm.profile.session import Frame, Session
>>> s = Session()
>>> main = s.frame_id(Frame("app", "main", "app.py", 1))
>>> work = s.frame_id(Frame("app", "work", "app.py", 5))
>>> s.add("MainThread", (main, work), on_cpu=0.3, off_cpu=0.1)
>>> round(s.total("on"), 3), round(s.total("off"), 3)
(0.3, 0.1)
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import sysconfig
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

VIEWS = ("on", "off", "wall")
_STDLIB_PATH = re.compile(r"[/\\]lib[/\\](pypy|python)\d+(\.\d+)?[/\\]", re.IGNORECASE)

_LIB_DIRS: tuple[str, ...] | None = None


def _library_dirs() -> tuple[str, ...]:
    global _LIB_DIRS
    if _LIB_DIRS is None:
        dirs = set()
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            p = sysconfig.get_paths().get(key)
            if p:
                dirs.add(os.path.realpath(p))
        dirs.add(os.path.realpath(os.path.dirname(os.__file__)))
        dirs.add(os.path.realpath(os.path.dirname(os.path.dirname(__file__))))  # phasm itself
        _LIB_DIRS = tuple(sorted(d + os.sep for d in dirs))
    return _LIB_DIRS


@functools.lru_cache(maxsize=4096)
def is_library_file(filename: str) -> bool:
    """True for interpreter, standard-library, site-packages and phasm frames (folded in views)."""
    if not filename or filename.startswith("<"):
        return True  # <frozen ...>, <string>, <built-in>
    if "site-packages" in filename or "dist-packages" in filename or _STDLIB_PATH.search(filename):
        return True  # (the last: another interpreter's standard library, as py-spy sees it)
    real = os.path.realpath(filename) if os.path.isabs(filename) else filename
    return real.startswith(_library_dirs())


@dataclass(frozen=True)
class Frame:
    """One function: ``module:qualname`` plus where it is defined."""

    module: str
    qualname: str
    file: str
    line: int
    library: bool = False

    @property
    def name(self) -> str:
        """``module:qualname``, the name candidates are listed by."""
        return f"{self.module}:{self.qualname}"

    @property
    def label(self) -> str:
        """Short label for flame graphs: ``qualname (file:line)``."""
        return f"{self.qualname} ({os.path.basename(self.file)}:{self.line})"


@dataclass
class Session:
    """Weighted stacks from one profiled run.

    ``stacks`` maps ``(thread, (frame ids root..leaf))`` to ``[on_cpu_s, off_cpu_s]``.
    ``main_thread`` names the thread whose wall time is the program's run time.
    """

    frames: list[Frame] = field(default_factory=list)
    stacks: dict[tuple[str, tuple[int, ...]], list[float]] = field(default_factory=dict)
    duration_s: float = 0.0
    rate_hz: float = 0.0
    n_samples: int = 0
    sampler: str = ""
    command: list[str] = field(default_factory=list)
    main_thread: str = "MainThread"
    meta: dict[str, Any] = field(default_factory=dict)
    _index: dict[Frame, int] = field(default_factory=dict, repr=False)

    # -- building ---------------------------------------------------------

    def frame_id(self, frame: Frame) -> int:
        """Index of ``frame`` in the frame table (added if new)."""
        i = self._index.get(frame)
        if i is None:
            i = self._index[frame] = len(self.frames)
            self.frames.append(frame)
        return i

    def add(self, thread: str, stack: tuple[int, ...], on_cpu: float = 0.0, off_cpu: float = 0.0) -> None:
        """Add time to one stack (frame ids, root first)."""
        if on_cpu < 0 or off_cpu < 0:
            raise ValueError(f"Session.add: on_cpu and off_cpu must be >= 0, got {on_cpu}, {off_cpu}")
        w = self.stacks.get((thread, stack))
        if w is None:
            self.stacks[(thread, stack)] = [on_cpu, off_cpu]
        else:
            w[0] += on_cpu
            w[1] += off_cpu

    def merge(self, other: "Session") -> "Session":
        """Add another session's samples (frames re-indexed); returns self."""
        remap = [self.frame_id(f) for f in other.frames]
        for (thread, stack), (on, off) in other.stacks.items():
            self.add(thread, tuple(remap[i] for i in stack), on, off)
        self.duration_s += other.duration_s
        self.n_samples += other.n_samples
        return self

    # -- reading ------------------------------------------------------------

    @staticmethod
    def weight(w: list[float] | tuple[float, float], view: str) -> float:
        if view == "on":
            return w[0]
        if view == "off":
            return w[1]
        if view == "wall":
            return w[0] + w[1]
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")

    def items(self, view: str, *, thread: str | None = None) -> Iterator[tuple[tuple[int, ...], float]]:
        """``(stack, seconds)`` pairs with non-zero weight in ``view`` ('on', 'off' or 'wall')."""
        for (th, stack), w in self.stacks.items():
            if thread is not None and th != thread:
                continue
            x = self.weight(w, view)
            if x > 0:
                yield stack, x

    def total(self, view: str, *, thread: str | None = None) -> float:
        """Seconds in ``view`` over all stacks (of one thread if given)."""
        return sum(x for _, x in self.items(view, thread=thread))

    def folded(self, view: str, *, fold_library: bool = True, unit: float = 1e-6) -> dict[str, int]:
        """Folded stacks ``"a;b;c" -> count`` (count in ``unit`` seconds, default microseconds)."""
        out: dict[str, int] = {}
        for stack, x in self.items(view):
            key = ";".join(self.frames[i].label for i in (self.fold(stack) if fold_library else stack))
            out[key] = out.get(key, 0) + int(round(x / unit))
        return {k: v for k, v in out.items() if v > 0}

    def fold(self, stack: Iterable[int]) -> tuple[int, ...]:
        """Fold library frames: each run of library frames keeps only its first (the call into it)."""
        out: list[int] = []
        prev_lib = False
        for i in stack:
            lib = self.frames[i].library
            if lib and prev_lib:
                continue
            out.append(i)
            prev_lib = lib
        return tuple(out)

    def find(self, name: str) -> list[int]:
        """Frame ids whose ``module:qualname`` (or bare qualname) equals ``name``."""
        return [i for i, f in enumerate(self.frames) if name in (f.name, f.qualname)]

    # -- persistence ---------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "phasm-profile-session/1",
            "frames": [asdict(f) for f in self.frames],
            "stacks": [[th, list(st), w[0], w[1]] for (th, st), w in self.stacks.items()],
            "duration_s": self.duration_s, "rate_hz": self.rate_hz, "n_samples": self.n_samples,
            "sampler": self.sampler, "command": list(self.command), "main_thread": self.main_thread,
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Session":
        if data.get("format") != "phasm-profile-session/1":
            raise ValueError(f"not a phasm profile session: format={data.get('format')!r}")
        s = cls(duration_s=float(data["duration_s"]), rate_hz=float(data["rate_hz"]),
                n_samples=int(data["n_samples"]), sampler=str(data["sampler"]), command=list(data["command"]),
                main_thread=str(data["main_thread"]), meta=dict(data.get("meta", {})))
        for f in data["frames"]:
            s.frame_id(Frame(**f))
        n = len(s.frames)
        for th, st, on, off in data["stacks"]:
            if any(not 0 <= i < n for i in st):
                raise ValueError(f"session stack refers to frame ids outside 0..{n - 1}: {st}")
            s.add(str(th), tuple(int(i) for i in st), float(on), float(off))
        return s

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json()))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Session":
        return cls.from_json(json.loads(Path(path).read_text()))


def module_for_file(filename: str, search: Iterable[str] | None = None) -> str:
    """Best-effort module name of a source file (``pkg.mod``) from the import path."""
    if not filename or filename.startswith("<"):
        return filename.strip("<>") or "?"
    real = os.path.realpath(filename)
    best = ""
    for d in list(search if search is not None else sys.path) + [os.getcwd()]:
        d = os.path.realpath(d or os.getcwd()) + os.sep
        if real.startswith(d) and len(d) > len(best):
            best = d
    rel = real[len(best):] if best else os.path.basename(real)
    rel = rel[:-3] if rel.endswith(".py") else rel
    parts = rel.split(os.sep)
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or "?"
