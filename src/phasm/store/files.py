"""Files beside a store: safe creation, locks, atomic publication, and HDF5 file-level checks.

Nothing here follows a symbolic link it did not get from the caller: lock
files are opened with ``O_NOFOLLOW``, new files are created exclusively under
a temporary name and published with ``link`` (which never replaces, nor
writes through, what is already there), and a shard folder that is a link is
refused.

Example
-------
>>> import tempfile
>>> d = Path(tempfile.mkdtemp())
>>> fd = try_lock(d / "s.h5.lock")
>>> fd is not None and try_lock(d / "s.h5.lock") is None  # a second open file description is refused
True
>>> release(fd)
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
from pathlib import Path
from typing import Any

from phasm.errors import StoreError
from phasm.store.layout import shard_dir

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_UNDEFINED = (1 << 64) - 1


def h5py_module() -> Any:
    """h5py, imported on first use (keeps ``import phasm`` light); typed ``Any``: h5py ships no type hints."""
    import h5py  # type: ignore[import-untyped, unused-ignore]

    return h5py


# HDF5 retries a metadata read whose checksum fails, in SWMR mode 100 times with a doubling
# sleep: a damaged file would hang the reader for hours.  24 attempts sleep ~20 ms in all,
# ample for a live writer's torn reads.
SWMR_READ_ATTEMPTS = 24
_set_read_attempts: Any = None


def _read_attempts_setter() -> Any:
    """``H5Pset_metadata_read_attempts`` from the HDF5 library h5py loaded (h5py does not wrap it); ``False`` if absent."""
    global _set_read_attempts
    if _set_read_attempts is None:
        _set_read_attempts = False
        try:
            with open("/proc/self/maps") as maps:
                lib = next(line.split(None, 5)[5].strip() for line in maps
                           if re.search(r"/libhdf5(?!_hl)[^/]*\.so", line))
            import ctypes

            fn = ctypes.CDLL(lib).H5Pset_metadata_read_attempts
            fn.argtypes, fn.restype = [ctypes.c_int64, ctypes.c_uint], ctypes.c_int
            _set_read_attempts = fn
        except (OSError, StopIteration, AttributeError, IndexError):
            pass
    return _set_read_attempts


def open_swmr_read(path: Path) -> Any:
    """Open ``path`` for SWMR reading with a bounded number of metadata read attempts.

    Raises ``OSError`` like h5py; where the bound cannot be set (no ``/proc``)
    the caller only comes here for files a writer holds or left open.
    """
    h5py = h5py_module()
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_file_locking(False, True)
    setter = _read_attempts_setter()
    if setter:
        setter(fapl.id, SWMR_READ_ATTEMPTS)
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ, fapl=fapl)
    return h5py.File(fid)


def read_attempts_bounded() -> bool:
    """Whether SWMR reads of a damaged file fail fast here (see :data:`SWMR_READ_ATTEMPTS`)."""
    return bool(_read_attempts_setter())


def refuse_link(path: Path, what: str) -> None:
    """Raise if ``path`` is a symbolic link: phasm creates ``what`` itself and never through a link."""
    if path.is_symlink():
        raise StoreError(
            f"{path}: refusing to use {what} through a symbolic link (to {os.readlink(path)!r}); "
            "phasm creates it itself; remove the link"
        )


def ensure_dir(path: Path, what: str) -> None:
    """Create the folder ``path`` (one level), refusing a symbolic link or a non-folder there."""
    refuse_link(path, what)
    try:
        path.mkdir(exist_ok=True)
    except FileExistsError:
        raise StoreError(f"{path}: {what} is in the way of a file that is not a folder") from None
    refuse_link(path, what)  # planted between the check and mkdir


def try_lock(path: Path) -> int | None:
    """An exclusive advisory lock on ``path`` (created if missing), or ``None`` when another holds it.

    The returned descriptor holds the lock until :func:`release`; the lock dies
    with the process, so a crashed writer never leaves it behind.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            refuse_link(path, "a lock file")
        raise StoreError(f"{path}: cannot open the lock file: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def release(fd: int | None) -> None:
    if fd is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def temp_path(final: Path) -> Path:
    """A fresh hidden name beside ``final`` (never read as a store: it does not end in ``.h5``)."""
    return final.with_name(f".{final.name}.{os.urandom(6).hex()}.tmp")


def publish(tmp: Path, final: Path) -> None:
    """Give the complete file ``tmp`` the name ``final``, atomically and never over an existing name.

    Raises ``FileExistsError`` (and removes ``tmp``) when ``final`` exists,
    even as a dangling link.
    """
    try:
        os.link(tmp, final, follow_symlinks=False)
    except FileExistsError:
        tmp.unlink()
        raise
    except OSError:
        # No hard links on this file system: the caller's lock or unique name keeps rename exclusive.
        if os.path.lexists(final):
            tmp.unlink()
            raise FileExistsError(errno.EEXIST, "file exists", str(final)) from None
        os.rename(tmp, final)
        return
    tmp.unlink()


def replace(tmp: Path, final: Path, backup: Path | None) -> None:
    """Put ``tmp`` in place of ``final`` atomically; keep the old file as ``backup`` (a hard link) if given."""
    if backup is not None:
        try:
            os.link(final, backup, follow_symlinks=False)
        except OSError:
            import shutil

            shutil.copy2(final, backup, follow_symlinks=False)
    os.replace(tmp, final)


def free_name(path: Path, suffix: str) -> Path:
    """``path`` + ``suffix``, or with ``-1``, ``-2`` ... appended until the name is free."""
    for i in range(10000):
        candidate = path.with_name(path.name + suffix + (f"-{i}" if i else ""))
        if not os.path.lexists(candidate):
            return candidate
    raise StoreError(f"{path}: no free name for a {suffix!r} copy beside it")


def stored_end_of_file(path: Path) -> int | None:
    """The end-of-file address an HDF5 file's superblock records, or ``None`` if it has none to read.

    HDF5 refuses a file shorter than this unless it is opened for SWMR
    reading, which skips the check; so phasm checks it itself.
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            base = 0
            while base + 64 <= size:  # the superblock sits at 0, 512, 1024, 2048 ...
                fh.seek(base)
                head = fh.read(96)
                if head[:8] == HDF5_SIGNATURE:
                    return _parse_superblock(head)
                base = 512 if base == 0 else base * 2
    except OSError:
        return None
    return None


def _parse_superblock(head: bytes) -> int | None:
    version = head[8]
    if version in (2, 3, 4):
        width, start = head[9], 12
    elif version in (0, 1):
        width, start = head[13], 24 if version == 0 else 28
    else:
        return None
    if width not in (2, 4, 8) or start + 3 * width > len(head):
        return None

    def field(i: int) -> int:
        return int.from_bytes(head[start + i * width : start + (i + 1) * width], "little")

    base_addr, eof = field(0), field(2)
    if eof in (_UNDEFINED, (1 << (8 * width)) - 1):
        return None
    return base_addr + eof


def has_hdf5_signature(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == HDF5_SIGNATURE
    except OSError:
        return False


def writer_left_open(path: Path) -> bool:
    """Whether the superblock's consistency flags say a writer had the file open and did not close it."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return len(head) == 12 and head[:8] == HDF5_SIGNATURE and head[8] >= 2 and head[11] != 0


def write_failure(exc: BaseException) -> tuple[int | None, str]:
    """The errno of an HDF5 write failure (from its message when h5py gives none) and a short reason."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if not isinstance(code, int):
        m = re.search(r"errno = (\d+)", text)
        code = int(m.group(1)) if m else None
    m = re.search(r"error message = '([^']*)'", text)
    reason = m.group(1) if m else (os.strerror(code) if code else text.splitlines()[0] if text else type(exc).__name__)
    return code, reason


DISK_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def detach(h5file: Any, fd: int | None) -> None:
    """Stop an HDF5 file that failed to write from ever touching the disk again, and close it.

    HDF5 keeps the failed writes dirty and retries them on close and at exit,
    which fails again and can crash the interpreter; pointing its descriptor
    at ``/dev/null`` lets the close succeed while the file on disk keeps what
    was written before the failure.
    """
    if fd is not None:
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
    try:
        h5file.close()
    except Exception:  # noqa: BLE001 - the file is already lost to us; nothing more to do
        pass


def vfd_handle(h5file: Any) -> int | None:
    """The OS file descriptor behind an open h5py file (sec2 driver), if any."""
    try:
        handle = h5file.id.get_vfd_handle()
    except Exception:  # noqa: BLE001 - other drivers have no descriptor
        return None
    return int(handle) if isinstance(handle, int) else None


def store_files(path: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The files of the store at ``path`` (main file first, then shards by name), and the entries skipped."""
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    if path.is_file():
        files.append(path)
    sdir = shard_dir(path)
    if sdir.is_symlink():
        skipped.append((sdir, "the shard folder is a symbolic link; phasm reads only shards it created"))
    elif sdir.is_dir():
        for p in sorted(sdir.iterdir()):
            if not p.name.endswith(".h5") or p.name.startswith("."):
                continue
            if p.is_symlink():
                skipped.append((p, "a symbolic link, not a shard phasm wrote"))
            elif not p.is_file():
                skipped.append((p, "not a regular file"))
            else:
                files.append(p)
    return files, skipped
