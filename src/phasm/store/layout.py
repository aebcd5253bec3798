"""The on-disk layout of a capture store file, shared by the writer, the reader and repair.

A store file (format 2) holds:

- attributes ``phasm_format`` (2), ``phasm_version``, ``function``, ``spec``
  (JSON), ``spec_hash``, ``created`` and ``block_rows``;
- one dataset per variable, rows on axis 0: ``in/<name>``, ``out/<name>``
  (a ragged variable as ``<name>.values`` + ``<name>.offsets``);
- ``_log``, int64 ``(records, 3 + 2 * columns)``: the commit log.  Rows are
  checksummed in blocks of ``block_rows``; each flush appends, for every
  block it touched, a record ``[end, cum_0 .. cum_k-1, start, seg_0 ..
  seg_k-1, check]``: the CRC-32 of each column's bytes from the block's first
  row up to ``end`` (``cum``, checked on every read), the CRC-32 of the rows
  this flush wrote into the block, ``[start, end)`` (``seg``, which lets a
  repair keep every flush that verifies), and a check word over the record
  itself, so a torn or zeroed record is no record;
- ``_rows``, int64 ``(1,)``: the committed row count.

A flush writes the rows and the log records, flushes the file, and only then
writes ``_rows`` and flushes again: the committed count never runs ahead of
data on disk.  A reader trusts the smallest consistent count (``_rows``, the
dataset lengths, the last valid log record) and checks every block it reads
against the log, so a truncated or altered file never reads back as wrong
rows.  Format 1 files (no ``_log``, no ``block_rows``) are still read, without
checksums.

Example
-------
>>> from phasm.bindings.spec import Array, Scalar, Spec
>>> spec = Spec.from_declarations("m.f", {"x": Scalar(), "v": Array((3,))}, {"y": Scalar()})
>>> [c.dataset for c in columns(spec)]
['in/x', 'in/v', 'out/y']
>>> block_rows_for(spec)
16384
>>> records = make_records(columns(spec), [np.arange(3.0), np.ones((3, 3)), np.zeros(3)], 0, 3, 2, [0, 0, 0], [0, 0, 0])[0]
>>> records[:, 0].tolist()  # one record per block touched: rows [0, 2) and [2, 3)
[2, 3]
>>> bool(np.all(valid_records(records)))
True
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from phasm.bindings.spec import Spec, Variable

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
ROWS_DATASET = "_rows"
LOG_DATASET = "_log"
BLOCK_ATTR = "block_rows"
VALUES = ".values"
OFFSETS = ".offsets"
# Limits a file may claim before it is taken as damaged rather than trusted.
MAX_BLOCK_ROWS = 1 << 24


class StoreWarning(UserWarning):
    """A file beside a store was skipped, or a store file was accepted with a remark."""


def dataset_name(group: str, var: Variable) -> str:
    """HDF5 path of a variable's dataset: ``in/<name>`` or ``out/<name>``."""
    return f"{group}/{str(var.name).replace('/', '%2F')}"


def shard_dir(path: Path) -> Path:
    """The folder of a store's shards: ``<path>.shards``."""
    return path.with_name(path.name + ".shards")


def lock_path(path: Path) -> Path:
    """The lock file a writer holds while it owns the main file: ``<path>.lock``."""
    return path.with_name(path.name + ".lock")


@dataclass(frozen=True)
class Column:
    """One checksummed stream of a file: a fixed-shape variable's rows, or a ragged one's offsets or values."""

    group: str
    var: Variable
    index: int  # position of the variable in inputs + outputs
    part: str  # "rows", "offsets" or "values"

    @property
    def dataset(self) -> str:
        base = dataset_name(self.group, self.var)
        return base + {"rows": "", "offsets": OFFSETS, "values": VALUES}[self.part]


def variables(spec: Spec) -> list[tuple[str, Variable]]:
    """``(group, variable)`` for every stored variable: inputs, then outputs."""
    return [("in", v) for v in spec.inputs] + [("out", v) for v in spec.outputs]


def columns(spec: Spec) -> list[Column]:
    """The checksummed columns of a file, in log order."""
    out: list[Column] = []
    for i, (group, v) in enumerate(variables(spec)):
        parts = ("offsets", "values") if v.ragged else ("rows",)
        out.extend(Column(group, v, i, p) for p in parts)
    return out


def block_rows_for(spec: Spec) -> int:
    """Rows per checksum block and per HDF5 chunk: a power of two near 1 MiB of rows over all variables.

    (A ragged row counts as 8 elements.)  Every dataset of a file chunks the
    same rows, so chunks are placed in the order rows arrive: a cut file keeps
    a prefix of every variable, not all of one and none of the next.
    """
    row_bytes = 0
    for _, v in variables(spec):
        elem = max(1, math.prod(v.shape)) * v.dtype.itemsize
        row_bytes += 8 + 8 * elem if v.ragged else elem
    rows = max(1, (1 << 20) // max(1, row_bytes))
    return 1 << min(16, rows.bit_length() - 1)


def chunk_rows_for(row_bytes: int) -> int:
    """HDF5 chunk length (elements) of a ragged variable's values: about 1 MiB."""
    return int(min(1 << 20, max(1, (1 << 20) // max(1, row_bytes))))


_crc32: Callable[[Any, int], int] | None = None


def crc32_function() -> Callable[[Any, int], int]:
    """The fastest CRC-32 installed: zlib-ng's (~25 GB/s here) if present, else zlib's (~4 GB/s).

    All compute the same CRC-32 as :func:`zlib.crc32`, so files do not depend
    on which one wrote them (``pip install 'phasm[fast]'`` for the fast ones).
    """
    global _crc32
    if _crc32 is None:
        try:
            from zlib_ng import zlib_ng  # type: ignore[import-not-found, unused-ignore]

            _crc32 = zlib_ng.crc32
        except ImportError:
            _crc32 = zlib.crc32
    return _crc32


def crc(data: np.ndarray, value: int = 0) -> int:
    """CRC-32 of an array's bytes (little-endian), continuing from ``value``."""
    if data.size == 0:
        return value
    arr = np.ascontiguousarray(data)
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and np.little_endian is False):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return (_crc32 or crc32_function())(arr.data.cast("B"), value)


def column_piece(col: Column, batch: Any, a: int, b: int, base: int) -> np.ndarray:
    """The bytes column ``col`` stores for rows ``[a, b)`` of ``batch``.

    ``batch`` is the variable's array ``(n, *shape)``, or for a ragged variable
    a :class:`~phasm.bindings.ragged.RaggedArray` whose first element sits at
    ``base`` in the file's values dataset.
    """
    if col.part == "rows":
        return batch[a:b]  # type: ignore[no-any-return]
    if col.part == "offsets":
        return base + batch.offsets[a + 1 : b + 1]  # type: ignore[no-any-return]
    return batch.values[batch.offsets[a] : batch.offsets[b]]  # type: ignore[no-any-return]


def log_width(n_columns: int) -> int:
    """Fields of one log record: end, cumulative CRCs, start, segment CRCs, check word."""
    return 3 + 2 * n_columns


def cumulative(records: np.ndarray) -> np.ndarray:
    """The cumulative (from the block's first row) CRC fields of log records."""
    k = (records.shape[1] - 3) // 2
    return records[:, 1 : 1 + k]


def segments(records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``start`` field and segment CRC fields of log records."""
    k = (records.shape[1] - 3) // 2
    return records[:, 1 + k], records[:, 2 + k : 2 + 2 * k]


def make_records(
    cols: Sequence[Column],
    batches: Sequence[Any],
    first_row: int,
    n: int,
    block_rows: int,
    crcs: Sequence[int],
    bases: Sequence[int],
) -> tuple[np.ndarray, list[int]]:
    """Log records for rows ``[first_row, first_row + n)`` of ``batches`` (one per variable).

    ``crcs`` are the running checksums of the block ``first_row`` falls in
    (zeros at a block start); ``bases`` the values offset of each variable's
    first element (0 for fixed-shape ones).  Returns the records, one per
    block touched, check word included, and the running checksums after them.
    """
    running = list(crcs)
    records = []
    pos = 0
    while pos < n:
        row = first_row + pos
        fresh = row % block_rows == 0
        stop = min(n, pos + block_rows - row % block_rows)
        seg = []
        for c, col in enumerate(cols):
            piece = column_piece(col, batches[col.index], pos, stop, bases[col.index])
            seg.append(crc(piece))
            # A piece that starts a block has the same running CRC; else one more pass continues it.
            running[c] = seg[-1] if fresh else crc(piece, running[c])
        records.append([first_row + stop, *running, row, *seg])
        pos = stop
    body = np.array(records, dtype=np.int64).reshape(len(records), log_width(len(cols)) - 1)
    return np.concatenate([body, record_checks(body)[:, None]], axis=1), running


_SEED = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xBF58476D1CE4E5B9)


def _keys(m: int) -> np.ndarray:
    """Distinct odd 64-bit multipliers, one per record field (a fixed splitmix64 sequence)."""
    state = np.arange(1, m + 1, dtype=np.uint64) * _SEED
    state ^= state >> np.uint64(30)
    state *= _MIX
    state ^= state >> np.uint64(27)
    return state | np.uint64(1)


def record_checks(body: np.ndarray) -> np.ndarray:
    """The check word of each record ``[end, crc_0 .. crc_k-1]`` (vectorised, int64).

    Any change of one field changes the word, and an all-zero record does not
    match its word, so a torn, zeroed or bit-flipped record is rejected.
    """
    u = np.ascontiguousarray(body, dtype=np.int64).view(np.uint64)
    h = (u * _keys(u.shape[1])).sum(axis=1, dtype=np.uint64) + _SEED
    h ^= h >> np.uint64(31)
    h *= _MIX
    h ^= h >> np.uint64(29)
    return np.asarray(h.view(np.int64))


def valid_records(records: np.ndarray) -> np.ndarray:
    """Boolean mask of the log records whose check word matches and whose end is positive."""
    if records.ndim != 2 or records.shape[1] < 3 or records.shape[1] % 2 == 0:
        return np.zeros(len(records), bool)
    start = segments(records)[0]
    ok = (records[:, -1] == record_checks(records[:, :-1])) & (records[:, 0] > start) & (start >= 0)
    return np.asarray(ok)
