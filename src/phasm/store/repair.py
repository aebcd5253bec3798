"""Repair a capture store: keep exactly the rows whose data is on disk and verifies.

Each file of the store (the main file and every shard) is checked block by
block against its commit log (:func:`phasm.store.check.salvage`):

- a file a live writer holds is left alone (and reported);
- a healthy file (every committed row verifies, full length, closed cleanly)
  is left alone;
- any other file is rewritten: the rows that verify are copied into a new
  file built under a temporary name beside it, the original is kept as
  ``<name>.damaged`` (a hard link) and the new file takes its name in one
  atomic rename, so a reader sees the old file or the new one, never a mix;
- a shard that is not a phasm store at all (empty, garbage) is renamed to
  ``<name>.unreadable`` so readers stop warning about it.

Example
-------
>>> import os, tempfile
>>> from phasm.bindings.spec import Scalar, Spec
>>> from phasm.store.writer import CaptureWriter
>>> path = Path(tempfile.mkdtemp()) / "s.h5"
>>> with CaptureWriter(path, Spec.from_declarations("m.f", {"x": Scalar()}, {"y": Scalar()}), flush_rows=10) as w:
...     for i in range(100):
...         w.append_row([float(i)], [2.0 * i])
>>> os.truncate(path, os.path.getsize(path) * 3 // 4)      # a cut copy: refused until repaired
>>> report = repair(path)
>>> report.files[0].action, report.rows_kept
('repaired', 100)
>>> from phasm.store.reader import CaptureStore
>>> len(CaptureStore(path)), path.with_name("s.h5.damaged").exists()
(100, True)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from phasm.errors import StoreError
from phasm.store.appender import FileAppender
from phasm.store.check import H5_ERRORS, FileState, NotAStoreError, inspect_file, open_for_read, read_span, salvage
from phasm.store.files import detach, free_name, h5py_module, release, replace, store_files, temp_path, try_lock, vfd_handle
from phasm.store.layout import FORMAT_VERSION, lock_path
from phasm.store.writer import holds_main

COPY_ROWS = 65536


@dataclass
class FileRepair:
    """What :func:`repair` found in, and did to, one file."""

    path: Path
    action: str  # "ok", "repaired", "would repair", "set aside", "would set aside", "in use", "skipped"
    committed: int = 0  # rows the file claimed
    kept: int = 0  # rows that verify (kept by a repair)
    detail: str = ""
    backup: Path | None = None


@dataclass
class RepairReport:
    """The outcome of :func:`repair` over every file of a store."""

    store: Path
    dry_run: bool
    files: list[FileRepair] = field(default_factory=list)

    @property
    def rows_kept(self) -> int:
        return sum(f.kept for f in self.files)

    @property
    def rows_dropped(self) -> int:
        return sum(max(0, f.committed - f.kept) for f in self.files)

    @property
    def changed(self) -> bool:
        return any(f.action in ("repaired", "set aside") for f in self.files)

    def summary(self) -> str:
        if not any(f.action not in ("ok", "in use", "skipped") for f in self.files):
            return f"{self.store}: healthy: {self.rows_kept} rows in {len(self.files)} file(s); nothing to repair"
        verb = "would keep" if self.dry_run else "kept"
        return (f"{self.store}: {verb} {self.rows_kept} rows that verify, dropped {self.rows_dropped}; "
                + ", ".join(f"{f.path.name}: {f.action}" for f in self.files if f.action != "ok"))


def repair(path: str | os.PathLike[str], *, dry_run: bool = False, keep_backup: bool = True) -> RepairReport:
    """Keep exactly the rows of the store at ``path`` whose data verifies; rewrite damaged files atomically.

    ``dry_run`` reports without writing; ``keep_backup=False`` deletes each
    damaged original once its repaired file is in place.  Raises
    :class:`StoreError` if a writer holds the main file, or the main file is
    not a phasm store.
    """
    path = Path(path)
    files, skipped = store_files(path)
    if not files and not skipped:
        raise FileNotFoundError(f"no capture store at {path}")
    if holds_main(path):
        raise StoreError(f"{path}: a capture writer in this process holds the main file; close it, then repair")
    fd = try_lock(lock_path(path)) if path.parent.is_dir() else None
    if fd is None and path.parent.is_dir():
        raise StoreError(f"{path}: a writer is capturing into this store (it holds {lock_path(path).name}); "
                         "repair once it has closed")
    report = RepairReport(path, dry_run)
    try:
        for p in files:
            report.files.append(_repair_file(p, path, dry_run, keep_backup))
        for p, reason in skipped:
            report.files.append(FileRepair(p, "skipped", detail=f"{reason}; remove it by hand"))
    finally:
        release(fd)
    return report


def _repair_file(p: Path, store: Path, dry_run: bool, keep_backup: bool) -> FileRepair:
    is_main = p == store
    fd = None if is_main else try_lock(p)
    if not is_main and fd is None:
        return FileRepair(p, "in use", detail="a live writer holds this shard")
    try:
        try:
            state = inspect_file(p, store, lenient=True)
        except NotAStoreError as exc:
            if is_main:
                raise StoreError(f"{exc}; not repairing a file that is not a phasm store") from None
            return _set_aside(p, ".unreadable", str(exc).removeprefix(f"{p}: "), dry_run)
        except (StoreError, *H5_ERRORS) as exc:
            return _set_aside(p, ".damaged", f"nothing in it verifies ({str(exc).removeprefix(f'{p}: ')})", dry_run)
        ranges, whole = salvage(state)
        kept = sum(b - a for a, b in ranges)
        problems = _problems(state, ranges)
        if not whole and not problems:
            problems = ["whole-block checksums do not match (block size or log altered); every flush verifies"]
        if not problems:
            return FileRepair(p, "ok", state.committed, kept, "every committed row verifies")
        detail = "; ".join(problems)
        if dry_run:
            return FileRepair(p, "would repair", state.committed, kept, detail)
        backup = _rewrite(state, ranges, keep_backup)
        return FileRepair(p, "repaired", state.committed, kept, detail, backup)
    finally:
        release(fd)


def _problems(state: FileState, ranges: list[tuple[int, int]]) -> list[str]:
    out = []
    if state.truncated:
        out.append(f"truncated ({state.size} of {state.stored_eof} bytes)")
    if state.rows < state.committed:
        out.append(f"{state.committed} rows committed, {state.rows} consistent")
    verified = [(0, state.rows)] if state.rows else []
    if ranges != verified:
        kept = ", ".join(f"{a}..{b - 1}" for a, b in ranges) or "none"
        out.append(f"rows that verify: {kept} of 0..{state.rows - 1}")
    if state.left_open:
        out.append("left open by a writer that stopped (crash or full disk)")
    if state.format != FORMAT_VERSION and out:
        out.append(f"format {state.format} (no checksums; kept the rows whose chunks are on disk)")
    return out


def _set_aside(p: Path, suffix: str, reason: str, dry_run: bool) -> FileRepair:
    if dry_run:
        return FileRepair(p, "would set aside", detail=reason)
    backup = free_name(p, suffix)
    os.rename(p, backup)
    return FileRepair(p, "set aside", detail=reason, backup=backup)


def _rewrite(state: FileState, ranges: list[tuple[int, int]], keep_backup: bool) -> Path | None:
    """Copy the verified rows into a new file beside ``state.path`` and swap it in atomically."""
    target = Path(os.path.realpath(state.path))
    tmp = temp_path(target)
    f = h5py_module().File(tmp, "x", libver="latest", locking=False)
    fd = vfd_handle(f)
    try:
        created = FileAppender.initialise(f, state.spec)
        for key in ("created", "function"):  # kept when still clean text
            value = state.attrs.get(key)
            if isinstance(value, str) and value.isprintable() and value.encode("utf-8", "ignore").decode() == value:
                f.attrs[key] = value
        f.attrs["repaired"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        f.attrs["repaired_rows_dropped"] = max(0, state.committed - sum(b - a for a, b in ranges))
        app = FileAppender.reopen(f, state.spec, tmp)
        with open_for_read(state.path) as src:
            for a, b in ranges:
                for lo in range(a, b, COPY_ROWS):
                    hi = min(b, lo + COPY_ROWS)
                    app.append(read_span(src, state.spec, lo, hi)[0], hi - lo)
        del created, app
        f.close()
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        detach(f, fd)
        if isinstance(exc, (OSError, RuntimeError)):
            raise StoreError(f"{state.path}: repair failed writing {tmp.name}: {str(exc).splitlines()[0]}") from None
        raise
    backup = free_name(target, ".damaged")
    replace(tmp, target, backup)
    if not keep_backup:
        backup.unlink()
        return None
    return backup
