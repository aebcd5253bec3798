"""The record of a sampling run, kept beside the store: the design, and which rows are done or failed.

Two things sit next to ``captures/f.h5``, neither inside the store format:

- ``captures/f.h5.sample.json``: the run file, written only by the process that
  drives the run (atomically): the space, the method and seed, every design
  point (argument values, by design index), and the batches that added them
  (the initial design, extensions, adaptive rounds with their reports).
- ``captures/f.h5.sample.rows/``: one pair of files per writer.
  ``<shard>.idx`` holds the design index (int64, little endian) of every row of
  the shard file ``<shard>`` of the store, appended *before* the rows are
  committed to the store; so the first ``committed rows`` entries are exact and
  entries past them (a writer killed between the two writes) are ignored.
  ``<writer>.fail.jsonl`` holds one JSON line ``{"i": index, "error": "..."}``
  per failed call (an exception, a non-finite output).

A row is *done* when its index is among a shard's committed entries; done rows
are skipped when a run resumes, and failed ones are not retried unless asked.
Nothing read from these files is ever imported or called: they hold numbers and
strings, checked before use.

Example
-------
>>> progress = read_progress("captures/f.h5")          # doctest: +SKIP
>>> len(progress.done), len(progress.failed)            # doctest: +SKIP
(400, 3)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from phasm.errors import SampleError, StoreError
from phasm.sampling.space import Space
from phasm.store.writer import shard_dir

RUN_FORMAT = 1
INDEX_DTYPE = np.dtype("<i8")


def run_file(store: str | os.PathLike[str]) -> Path:
    """``<store>.sample.json``."""
    p = Path(store)
    return p.with_name(p.name + ".sample.json")


def rows_dir(store: str | os.PathLike[str]) -> Path:
    """``<store>.sample.rows/``: per-writer design indices and failures."""
    p = Path(store)
    return p.with_name(p.name + ".sample.rows")


@dataclass
class Progress:
    """What a store holds of a design: done indices (one entry per stored row) and failures."""

    done: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    failed: dict[int, str] = field(default_factory=dict)

    @property
    def done_set(self) -> set[int]:
        return set(self.done.tolist())

    @property
    def duplicates(self) -> int:
        """Rows stored more than once (0 unless a writer ran a row twice)."""
        return int(len(self.done) - len(np.unique(self.done)))


def committed_rows(shard: Path) -> int:
    """Rows committed in one file of a store (0 if it does not exist)."""
    from phasm.store.reader import CaptureStore

    if not shard.is_file():
        return 0
    try:
        return len(CaptureStore(shard))
    except (StoreError, FileNotFoundError, OSError):
        return 0


def read_index_file(path: Path) -> np.ndarray:
    """The design indices in an ``.idx`` file (a torn last entry is dropped)."""
    raw = path.read_bytes()
    raw = raw[: len(raw) - len(raw) % INDEX_DTYPE.itemsize]
    return np.frombuffer(raw, INDEX_DTYPE).astype(np.int64)


def read_progress(store: str | os.PathLike[str], only: set[int] | None = None) -> Progress:
    """Done and failed design indices of the sampling run beside ``store``.

    ``only``: look at these indices only; a shard file is opened just when its
    index file mentions one of them (cheap when a worker checks its batch).
    """
    rdir = rows_dir(store)
    prog = Progress()
    if not rdir.is_dir():
        return prog
    sdir = shard_dir(Path(store))
    chunks = []
    wanted = np.fromiter(only, np.int64, len(only)) if only is not None else None
    for idx_path in sorted(rdir.glob("*.idx")):
        idx = read_index_file(idx_path)
        if wanted is not None and not np.isin(idx, wanted).any():
            continue
        n = committed_rows(sdir / idx_path.name[: -len(".idx")])
        chunks.append(idx[:n])
    if chunks:
        prog.done = np.concatenate(chunks)
    for fail_path in sorted(rdir.glob("*.fail.jsonl")):
        for line in fail_path.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
                i, err = int(rec["i"]), str(rec["error"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # a line torn by a kill
            if only is None or i in only:
                prog.failed[i] = err
    done = prog.done_set
    prog.failed = {i: e for i, e in prog.failed.items() if i not in done}  # a later success wins
    return prog


def design_index(store: str | os.PathLike[str]) -> np.ndarray:
    """The design index of every row of ``store``, in :class:`~phasm.store.CaptureStore` order (``-1``:
    a row not written by ``phasm sample``, e.g. one captured by a running program)."""
    from phasm.store.reader import CaptureStore

    cs = CaptureStore(store)
    total = len(cs)
    sdir = shard_dir(Path(store))
    out: list[np.ndarray | None] = []
    shard_total = 0
    for f in cs.files:
        if f == Path(store):
            out.append(None)  # the main file's rows: filled below
            continue
        n = committed_rows(f)
        shard_total += n
        idx_path = rows_dir(store) / (f.name + ".idx")
        idx = read_index_file(idx_path)[:n] if idx_path.is_file() and f.parent == sdir else np.empty(0, np.int64)
        out.append(np.concatenate([idx, np.full(n - len(idx), -1, np.int64)]))
    main = total - shard_total
    return np.concatenate([np.full(main, -1, np.int64) if o is None else o for o in out]) if out else np.empty(0, np.int64)


class SampleRun:
    """The run file: space, method, seed, design points by index, and the batches that added them.

    Example
    -------
    >>> run = SampleRun.create(Space({"x": (0.0, 1.0)}), "sobol", 0, "m.f")
    >>> run.add_points(np.array([[0.25], [0.75]]), {"kind": "design", "n": 2})
    range(0, 2)
    >>> run.points.shape
    (2, 1)
    """

    def __init__(self, space: Space, method: str, seed: int, function: str, points: np.ndarray,
                 batches: list[dict[str, Any]]) -> None:
        self.space, self.method, self.seed, self.function = space, method, int(seed), function
        self.points = points
        self.batches = batches

    @classmethod
    def create(cls, space: Space, method: str, seed: int, function: str) -> "SampleRun":
        return cls(space, method, seed, function, np.empty((0, space.dim)), [])

    @property
    def n_design(self) -> int:
        """Points drawn from the design sequence (all batches but adaptive ones)."""
        return sum(b["count"] for b in self.batches if b["kind"] == "design")

    def add_points(self, points: np.ndarray, batch: dict[str, Any]) -> range:
        """Append points with a batch record; returns their design indices."""
        start = len(self.points)
        self.points = np.concatenate([self.points, np.asarray(points, np.float64).reshape(-1, self.space.dim)])
        self.batches.append({**batch, "start": start, "count": len(points)})
        return range(start, len(self.points))

    # -- the file ---------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"phasm_sample_run": RUN_FORMAT, "function": self.function, "space": self.space.to_json(),
                "method": self.method, "seed": self.seed, "batches": self.batches,
                "names": list(self.space.names), "points": self.points.tolist()}

    def save(self, store: str | os.PathLike[str]) -> Path:
        path = run_file(store)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(self.to_json(), allow_nan=False))
        os.replace(tmp, path)  # readers see the old or the new file, never half of one
        return path

    @classmethod
    def load(cls, store: str | os.PathLike[str]) -> "SampleRun | None":
        path = run_file(store)
        if not path.is_file():
            return None
        try:
            d = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SampleError(f"{path}: not a readable sampling run file ({exc})") from None
        if not isinstance(d, dict) or d.get("phasm_sample_run") != RUN_FORMAT:
            raise SampleError(f"{path}: not a phasm sampling run file of format {RUN_FORMAT}")
        space = Space.from_json(d.get("space", {}))
        try:
            points = np.asarray(d["points"], np.float64).reshape(-1, space.dim)
            batches = [dict(b) for b in d["batches"]]
            method, seed, function = str(d["method"]), int(d["seed"]), str(d["function"])
            counts = sum(int(b["count"]) for b in batches)
        except (KeyError, TypeError, ValueError) as exc:
            raise SampleError(f"{path}: malformed run file ({exc})") from None
        if counts != len(points):
            raise SampleError(f"{path}: its batches count {counts} points, it holds {len(points)}")
        lo = np.array([r.low for r in space.ranges])
        hi = np.array([r.high for r in space.ranges])
        if len(points) and not (np.isfinite(points).all() and (points >= lo).all() and (points <= hi).all()):
            raise SampleError(f"{path}: design points outside the space {space.describe()}")
        return cls(space, method, seed, function, points, batches)
