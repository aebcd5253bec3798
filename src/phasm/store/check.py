"""Checking one store file: what it claims, which part of that is consistent, and which rows verify.

:func:`inspect_file` validates a file's attributes, datasets and commit log
and settles its row count on the smallest consistent value; a file shorter
than its HDF5 superblock says is refused with the number of rows that still
verify.  :func:`read_verified` reads rows and checks every block they touch
against the log.  :func:`salvage` finds every row range that verifies, for
error messages and for :func:`phasm.store.repair`.

Example
-------
>>> state = inspect_file(Path("captures/price.h5"), Path("captures/price.h5"))  # doctest: +SKIP
>>> state.rows, state.block_rows                                               # doctest: +SKIP
(4000, 16384)
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from phasm.bindings.ragged import RaggedArray
from phasm.bindings.spec import Spec
from phasm.errors import PhasmError, StoreDamaged, StoreError
from phasm.store.files import (
    h5py_module, has_hdf5_signature, open_swmr_read, read_attempts_bounded, stored_end_of_file, writer_left_open,
)
from phasm.store.layout import (
    BLOCK_ATTR, FORMAT_VERSION, LOG_DATASET, MAX_BLOCK_ROWS, OFFSETS, READABLE_FORMATS, ROWS_DATASET, VALUES,
    StoreWarning, column_piece, columns, crc, cumulative, dataset_name, log_width, make_records, segments,
    valid_records, variables,
)

# What h5py raises on a damaged file: HDF5 errors (OSError, RuntimeError), and bad selections or types.
H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, IndexError, TypeError)
# What parsing a spec out of a file may raise on hostile JSON.
_PARSE_ERRORS = (PhasmError, ValueError, TypeError, KeyError, AttributeError, RecursionError)


class NotAStoreError(StoreError):
    """The file is not a phasm capture store at all (a shard like this is skipped)."""


class Damage(Exception):
    """Rows ``[lo, hi)`` of a file do not verify (internal; readers turn it into :class:`StoreDamaged`)."""

    def __init__(self, lo: int, hi: int, reason: str) -> None:
        super().__init__(reason)
        self.lo, self.hi, self.reason = lo, hi, reason


@dataclass
class FileState:
    """What one store file holds, as far as it is consistent."""

    path: Path
    spec: Spec
    attrs: dict[str, Any]
    format: int
    committed: int  # the file's ``_rows``
    rows: int  # the rows a reader trusts: the smallest consistent count
    block_rows: int  # 0 for format 1 (no checksums)
    log: np.ndarray = field(repr=False)  # valid records with end <= rows, in order
    size: int = 0
    stored_eof: int | None = None
    left_open: bool = False

    @property
    def truncated(self) -> bool:
        return self.stored_eof is not None and self.size < self.stored_eof


def open_for_read(path: Path) -> Any:
    """Open a store file read-only; a file a writer holds (or left open) through SWMR reading."""
    h5py = h5py_module()
    try:
        return h5py.File(path, "r", locking=False)
    except H5_ERRORS:
        pass
    if not has_hdf5_signature(path):
        raise NotAStoreError(f"{path}: not a readable HDF5 file") from None
    eof = stored_end_of_file(path)
    short = eof is not None and os.path.getsize(path) < eof
    if not (read_attempts_bounded() or short or writer_left_open(path)):
        raise StoreDamaged(f"{path}: a damaged HDF5 file that cannot be opened: no rows are recoverable", path=path)
    try:
        # A writer is running or crashed (SWMR), or the file is truncated: SWMR reading
        # skips HDF5's own length check, so inspect_file checks the length itself.
        return open_swmr_read(path)
    except H5_ERRORS as exc:
        raise StoreDamaged(f"{path}: a damaged HDF5 file that cannot be opened ({_first_line(exc)}): "
                           "no rows are recoverable", path=path) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _attr(f: Any, name: str) -> Any:
    try:
        return f.attrs[name] if name in f.attrs else None
    except H5_ERRORS as exc:
        raise StoreError(f"{f.filename}: unreadable attribute {name!r} ({_first_line(exc)})") from None


def _as_int(value: Any) -> int | None:
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.ndarray) and value.shape in ((), (1,)) and value.dtype.kind in "iu":
        return int(value.reshape(-1)[0])
    return None


def _as_text(value: Any) -> str | None:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


def read_spec(f: Any, path: Path) -> tuple[int, Spec]:
    """The format version and spec a file declares; :class:`NotAStoreError` without the phasm markers."""
    fmt_raw, spec_raw = _attr(f, "phasm_format"), _attr(f, "spec")
    if fmt_raw is None or spec_raw is None:
        raise NotAStoreError(f"{path}: not a phasm capture store (no phasm_format/spec attributes)")
    fmt = _as_int(fmt_raw)
    if fmt is not None and fmt > FORMAT_VERSION:
        raise StoreError(f"{path}: store format {fmt} is newer than this phasm understands ({FORMAT_VERSION})")
    if fmt not in READABLE_FORMATS:
        raise StoreError(f"{path}: attribute phasm_format is {_short(fmt_raw)}, "
                         f"expected an integer format version in {READABLE_FORMATS}")
    text = _as_text(spec_raw)
    if text is None:
        raise StoreError(f"{path}: attribute spec is {_short(spec_raw)}, expected JSON text")
    try:
        spec = Spec.from_json(json.loads(text))
    except _PARSE_ERRORS as exc:
        raise StoreError(f"{path}: unreadable spec attribute: {_first_line(exc)}") from None
    stored_hash = _as_text(_attr(f, "spec_hash"))
    if stored_hash is None and fmt >= 2:
        raise StoreError(f"{path}: attribute spec_hash is missing or not text")
    if stored_hash is not None and stored_hash != spec.hash:
        raise StoreError(f"{path}: attribute spec_hash is {stored_hash!r} but the spec hashes to {spec.hash!r} "
                         "(the file was edited or damaged)")
    return fmt, spec


def _short(value: Any) -> str:
    text = repr(value.tolist() if isinstance(value, np.ndarray) else value)
    return text if len(text) <= 60 else text[:57] + "..."


def _dataset(f: Any, name: str, path: Path) -> Any:
    h5py = h5py_module()
    try:
        ds = f.get(name)
    except H5_ERRORS as exc:
        raise StoreError(f"{path}: dataset {name!r} cannot be read ({_first_line(exc)})") from None
    if not isinstance(ds, h5py.Dataset):
        raise StoreError(f"{path}: dataset {name!r} is missing")
    return ds


def _check_datasets(f: Any, spec: Spec, path: Path) -> int:
    """Check every variable's datasets against the spec; return how many rows all of them hold."""
    lengths = []
    for group, v in variables(spec):
        name = dataset_name(group, v)
        if v.ragged:
            values, offsets = _dataset(f, name + VALUES, path), _dataset(f, name + OFFSETS, path)
            if values.shape[1:] != v.shape or values.dtype != v.dtype:
                raise StoreError(f"{path}: dataset {name + VALUES!r} has shape {values.shape[1:]} dtype {values.dtype}, "
                                 f"spec says {v.shape} {v.dtype}")
            if offsets.ndim != 1 or offsets.dtype != np.int64 or offsets.shape[0] < 1:
                raise StoreError(f"{path}: dataset {name + OFFSETS!r} has shape {offsets.shape} dtype {offsets.dtype}, "
                                 "expected int64 (rows + 1,)")
            lengths.append(int(offsets.shape[0]) - 1)
            continue
        ds = _dataset(f, name, path)
        if ds.shape[1:] != v.shape or ds.dtype != v.dtype:
            raise StoreError(f"{path}: dataset {name!r} has shape {ds.shape[1:]} dtype {ds.dtype}, "
                             f"spec says {v.shape} {v.dtype}")
        lengths.append(int(ds.shape[0]))
    return min(lengths)


def _committed(f: Any, path: Path) -> int:
    ds = _dataset(f, ROWS_DATASET, path)
    if ds.ndim != 1 or ds.shape[0] < 1 or ds.dtype.kind not in "iu":
        raise StoreError(f"{path}: row counter {ROWS_DATASET!r} has shape {ds.shape} dtype {ds.dtype}, expected int64 (1,)")
    committed = int(ds[0])
    if committed < 0:
        raise StoreError(f"{path}: the committed row count is {committed}, which is negative (damaged file; "
                         "`phasm repair` rebuilds it from the rows that verify)")
    return committed


def _read_log(f: Any, spec: Spec, path: Path) -> np.ndarray:
    ds = _dataset(f, LOG_DATASET, path)
    width = log_width(len(columns(spec)))
    if ds.ndim != 2 or ds.shape[1] != width or ds.dtype != np.int64:
        raise StoreError(f"{path}: commit log {LOG_DATASET!r} has shape {ds.shape} dtype {ds.dtype}, "
                         f"expected int64 (records, {width})")
    records: np.ndarray = np.asarray(ds[:], dtype=np.int64)
    records = records[valid_records(records)]
    if len(records) > 1 and np.any(np.diff(records[:, 0]) <= 0):
        raise StoreError(f"{path}: the commit log is out of order (damaged file)")
    return records


def check_open_file(f: Any, path: Path) -> FileState:
    """Validate an open file and settle its row count; raises :class:`StoreError` (or subclasses)."""
    fmt, spec = read_spec(f, path)
    attrs: dict[str, Any] = {}
    for key in f.attrs:
        if key == "spec":
            continue
        value = _attr(f, key)
        value = value.item() if isinstance(value, np.generic) else value
        attrs[key] = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    block_rows = 0
    if fmt >= 2:
        block_rows = _as_int(attrs.get(BLOCK_ATTR)) or 0
        if not 1 <= block_rows <= MAX_BLOCK_ROWS:
            raise StoreError(f"{path}: attribute {BLOCK_ATTR} is {_short(attrs.get(BLOCK_ATTR))}, "
                             f"expected an integer in 1..{MAX_BLOCK_ROWS}")
    committed = _committed(f, path)
    # A crash may leave datasets longer or shorter than the committed count: trust the smaller.
    rows = min(committed, _check_datasets(f, spec, path))
    log = np.zeros((0, log_width(len(columns(spec)))), np.int64)
    if fmt >= 2:
        log = _read_log(f, spec, path)
        ends = log[:, 0]
        rows = int(ends[ends <= rows].max()) if np.any(ends <= rows) else 0
        rows = _ragged_consistent(f, spec, path, rows, ends)
        log = log[ends <= rows]
    return FileState(path=path, spec=spec, attrs=attrs, format=fmt, committed=committed, rows=rows,
                     block_rows=block_rows, log=log)


def _ragged_consistent(f: Any, spec: Spec, path: Path, rows: int, ends: np.ndarray) -> int:
    """Step back to an earlier record end while a ragged variable's offsets point past its values."""
    for group, v in variables(spec):
        if not v.ragged:
            continue
        name = dataset_name(group, v)
        offsets, n_values = f[name + OFFSETS], f[name + VALUES].shape[0]
        if int(offsets[0]) != 0:
            raise StoreError(f"{path}: dataset {name + OFFSETS!r} does not start at 0 (damaged file)")
        candidates = [int(e) for e in ends[ends <= rows]][::-1] + [0]
        for end in candidates:
            if int(offsets[end]) <= n_values:
                rows = end
                break
    return rows


def inspect_file(path: Path, store_path: Path, *, lenient: bool = False) -> FileState:
    """Open, validate and close one file of the store at ``store_path``.

    A file shorter than its superblock records is refused with the number of
    rows that verify, unless a writer left it open (a crash or a full disk can
    leave it so) and every committed row verifies; ``lenient`` (for repair)
    returns it without that check.
    """
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the file: {exc.strerror}") from None
    eof = stored_end_of_file(path)
    cut = f"{path}: the file is truncated ({size} of {eof} bytes)"
    try:
        with open_for_read(path) as f:
            try:
                state = check_open_file(f, path)
            except StoreError:
                raise
            except H5_ERRORS as exc:
                raise StoreDamaged(f"{path}: the file is damaged ({_first_line(exc)}); "
                                   f"`phasm repair {store_path}` keeps the rows that verify", path=path) from None
    except StoreError:
        if eof is None or size >= eof:
            raise
        # Cut before its own structure ends: nothing in it can be trusted, not even "not a store".
        raise StoreDamaged(f"{cut}: no rows are recoverable; `phasm repair {store_path}` sets it aside",
                           path=path) from None
    state.size, state.stored_eof, state.left_open = size, eof, writer_left_open(path)
    if state.truncated and not lenient:
        ranges, whole = salvage(state)
        kept = sum(b - a for a, b in ranges)
        if state.left_open and state.format >= 2 and whole:
            warnings.warn(f"{path}: a writer stopped without closing this file (crash or full disk); its "
                          f"{kept} committed rows verify; `phasm repair {store_path}` rewrites it cleanly",
                          StoreWarning, stacklevel=3)
            return state
        raise StoreDamaged(f"{cut}: {kept} of {state.committed} committed rows are recoverable; "
                           f"`phasm repair {store_path}` keeps them", path=path, recoverable=kept,
                           committed=state.committed)
    return state


# -- reading rows --------------------------------------------------------------


def read_span(f: Any, spec: Spec, lo: int, hi: int, *, strict: bool = True) -> tuple[list[Any], list[int]]:
    """Rows ``[lo, hi)`` of every variable (ragged ones as RaggedArray), and each one's first values offset."""
    data: list[Any] = []
    bases: list[int] = []
    for group, v in variables(spec):
        name = dataset_name(group, v)
        if not v.ragged:
            data.append(f[name][lo:hi])
            bases.append(0)
            continue
        off = np.asarray(f[name + OFFSETS][lo : hi + 1], dtype=np.int64)
        values_ds = f[name + VALUES]
        if len(off) != hi - lo + 1 or off[0] < 0 or off[-1] > values_ds.shape[0] or np.any(np.diff(off) < 0):
            if strict:
                raise Damage(lo, hi, f"dataset {name + OFFSETS!r} holds invalid offsets")
            off = np.maximum.accumulate(np.clip(off, 0, values_ds.shape[0]))
        values = values_ds[int(off[0]) : int(off[-1])]
        data.append(RaggedArray.trusted(values, off - off[0]))
        bases.append(int(off[0]))
    return data, bases


def read_verified(f: Any, state: FileState, lo: int, hi: int) -> list[Any]:
    """Rows ``[lo, hi)`` (``hi <= state.rows``), every block they touch checked against the log.

    Raises :class:`Damage` naming the first block that does not verify.
    """
    B = state.block_rows
    if B == 0:  # format 1: no checksums to check
        return read_span(f, state.spec, lo, hi)[0]
    # From the first block's start to the first commit at or after ``hi``: the checksums of
    # whole blocks and of that commit cover exactly the rows read.
    ends = state.log[:, 0]
    blo = lo // B * B
    after = int(np.searchsorted(ends, hi))
    bhi = int(ends[after]) if after < len(ends) else state.rows
    data, bases = read_span(f, state.spec, blo, bhi)
    cols = columns(state.spec)
    computed, _ = make_records(cols, data, blo, bhi - blo, B, [0] * len(cols), bases)
    idx = np.minimum(np.searchsorted(ends, computed[:, 0]), max(len(ends) - 1, 0))
    if len(ends):
        stored = state.log[idx]
        ok = (stored[:, 0] == computed[:, 0]) & np.all(cumulative(stored) == cumulative(computed), axis=1)
    else:
        ok = np.zeros(len(computed), bool)
    if not ok.all():
        end = int(computed[int(np.argmin(ok)), 0])
        start = (end - 1) // B * B
        raise Damage(start, end, f"rows {start}..{end - 1} do not match their checksums")
    return [_slice(x, lo - blo, hi - blo) for x in data]


def _slice(x: Any, a: int, b: int) -> Any:
    if isinstance(x, RaggedArray):
        off = x.offsets[a : b + 1]
        return RaggedArray.trusted(x.values[off[0] : off[-1]], off - off[0])
    return x[a:b]


def salvage(state: FileState) -> tuple[list[tuple[int, int]], bool]:
    """The row ranges of a file whose data verifies, and whether every block verifies whole.

    Rows verify by their block's checksum, or else by their own flush's; only
    a file whose every block verifies whole reads without error (format 1
    files: the rows whose chunks are on disk, always readable).
    """
    try:
        with open_for_read(state.path) as f:
            if state.block_rows == 0:
                return _salvage_by_chunks(f, state), True
            return _salvage_blocks(f, state)
    except (StoreError, *H5_ERRORS):
        return [], state.rows == 0


def _salvage_blocks(f: Any, state: FileState) -> tuple[list[tuple[int, int]], bool]:
    B = state.block_rows
    cols = columns(state.spec)
    ends = state.log[:, 0]
    kept: list[tuple[int, int]] = []
    whole = True
    for start in range(0, state.rows, B):
        stop = min(start + B, state.rows)
        in_block = state.log[(ends > start) & (ends <= stop)]
        try:
            data, bases = read_span(f, state.spec, start, stop, strict=False)
            sound = offsets_sound(f, state.spec, start, stop)
        except H5_ERRORS:
            whole = False
            continue

        def crcs(a: int, b: int, running: list[int]) -> list[int]:
            return [crc(column_piece(col, data[col.index], a - start, b - start, bases[col.index]), running[c])
                    for c, col in enumerate(cols)]

        # Fast path: the block's rows verify up to its last commit.
        if sound and len(in_block) and int(in_block[-1, 0]) == stop and crcs(start, stop, [0] * len(cols)) == list(
                cumulative(in_block)[-1]):
            kept.append((start, stop))
            continue
        whole = False  # else keep every flush whose own rows verify
        seg_starts, seg_crcs = segments(in_block)
        for record, a, expected in zip(in_block, seg_starts, seg_crcs):
            a, b = int(a), int(record[0])
            if start <= a < b and (sound or offsets_sound(f, state.spec, a, b)) and crcs(
                    a, b, [0] * len(cols)) == list(expected):
                kept.append((a, b))
    merged: list[tuple[int, int]] = []
    for a, b in kept:
        if merged and merged[-1][1] == a:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged, whole


def offsets_sound(f: Any, spec: Spec, lo: int, hi: int) -> bool:
    """Whether every ragged variable's offsets for rows ``[lo, hi)`` read as stored (in range, not
    decreasing).  Checksums are computed on clamped offsets; a row whose offset had to be clamped
    does not verify, even when its clamped values match (a flipped bit in a row's end)."""
    for group, v in variables(spec):
        if v.ragged:
            name = dataset_name(group, v)
            off = np.asarray(f[name + OFFSETS][lo : hi + 1], dtype=np.int64)
            if len(off) != hi - lo + 1 or off[0] < 0 or off[-1] > f[name + VALUES].shape[0] or np.any(np.diff(off) < 0):
                return False
    return True


def _salvage_by_chunks(f: Any, state: FileState) -> list[tuple[int, int]]:
    """Format 1: the committed rows whose chunks all lie inside the file (no checksums to check)."""
    rows = state.rows
    for group, v in variables(state.spec):
        name = dataset_name(group, v)
        if v.ragged:
            offsets = f[name + OFFSETS]
            rows = min(rows, _rows_on_disk(offsets, rows + 1, state.size) - 1)
            limit = _rows_on_disk(f[name + VALUES], int(offsets[rows]) if rows > 0 else 0, state.size)
            off = np.asarray(offsets[: rows + 1])
            rows = min(rows, int(np.searchsorted(off, limit, side="right")) - 1)
        else:
            rows = min(rows, _rows_on_disk(f[name], rows, state.size))
    return [(0, rows)] if rows > 0 else []


def _rows_on_disk(ds: Any, rows: int, size: int) -> int:
    """How many of the first ``rows`` entries of ``ds`` lie in allocated chunks inside the file's length."""
    chunk = ds.chunks[0] if ds.chunks else max(rows, 1)
    on_disk = {}
    for i in range(ds.id.get_num_chunks()):
        info = ds.id.get_chunk_info(i)
        on_disk[info.chunk_offset[0]] = info.byte_offset + info.size <= size
    for start in range(0, rows, chunk):
        if not on_disk.get(start, False):
            return start
    return rows
