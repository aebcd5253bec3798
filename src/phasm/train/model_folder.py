"""A model folder on disk: ``phasm.json`` plus weights files, sealed by one manifest digest.

The digest is the SHA-256 of ``phasm.json``'s content (every field but the digest itself, in a
canonical JSON form) and that content lists the SHA-256 of every weights file, so it covers every
byte phasm uses.  :func:`read_folder` refuses a folder whose digest does not match, a listed file
that is missing or altered, any other file (or link, or sub-folder) in the folder, and folders of
format 1, which had no digest.  It returns the verified bytes, so what is used is what was checked.

The digest detects corruption and edits; it is not a signature: whoever can write a folder can also
write a consistent one.  Pin a folder you received with ``expect_digest`` (the digest is printed
by ``phasm info``).

:func:`write_folder` writes into a fresh folder beside the target (created with the process umask)
and renames it into place; an existing folder is replaced only if it holds a phasm model and
nothing else.

Example
-------
>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> def weights(d): (d / "w.bin").write_bytes(b"0123"); return ["w.bin"]
>>> path, digest = write_folder(root / "m", weights, lambda: {"format": FORMAT, "format_version": FORMAT_VERSION})
>>> folder = read_folder(path, expect_digest=digest)
>>> folder.files["w.bin"], folder.meta["manifest"]["digest"] == digest
(b'0123', True)
>>> (path / "w.bin").write_bytes(b"0124")
4
>>> read_folder(path)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
phasm.errors.ArtefactError: ...: weights file w.bin was changed after the model was saved ...truncated
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from phasm.errors import ArtefactError

FORMAT = "phasm-model"
FORMAT_VERSION = 2  # 2: manifest digest over phasm.json and every file; 1 (refused): per-file digests only
METADATA_FILE = "phasm.json"
MANIFEST = "manifest"
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_digest(meta: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the canonical JSON of ``meta`` without its ``manifest`` field.

    ``meta`` holds the weights files' digests, so this one digest covers the whole folder.

    >>> manifest_digest({"a": 1, "files": {}}) == manifest_digest({"files": {}, "a": 1, "manifest": "x"})
    True
    """
    body = {k: v for k, v in meta.items() if k != MANIFEST}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def json_default(o: Any) -> Any:
    """``json.dumps`` fallback for numpy values and paths."""
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


@dataclass(frozen=True)
class VerifiedFolder:
    """A model folder's metadata and weights bytes, checked against its manifest digest."""

    path: Path
    meta: dict[str, Any]
    files: dict[str, bytes]
    digest: str


def _strict_json(text: str, where: Path) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise ArtefactError(f"{where}: key {k!r} appears twice")
            out[k] = v
        return out

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ArtefactError(f"{where}: corrupted metadata ({type(exc).__name__}: {str(exc)[:200]})") from None


def _read_regular(path: Path, what: str) -> bytes:
    """The bytes of a regular file (not a link), refused with a clear error otherwise."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ArtefactError(f"{path.parent}: {what} {path.name} is missing") from None
    if not stat.S_ISREG(st.st_mode):
        raise ArtefactError(f"{path.parent}: {what} {path.name} is not a regular file")
    return path.read_bytes()


def read_folder(path: str | os.PathLike[str], *, expect_digest: str | None = None) -> VerifiedFolder:
    """Read and verify a model folder (see the module doc); every failure is one :class:`ArtefactError`."""
    path = Path(path)
    if not path.is_dir():
        raise ArtefactError(f"{path}: no model folder there" if not path.exists() else f"{path}: not a folder")
    meta_path = path / METADATA_FILE
    if not meta_path.exists() and not meta_path.is_symlink():
        raise ArtefactError(f"{path}: not a phasm model folder (no {METADATA_FILE})")
    try:
        text = _read_regular(meta_path, "metadata file").decode("utf-8")
    except UnicodeDecodeError:
        raise ArtefactError(f"{meta_path}: corrupted metadata (not UTF-8)") from None
    meta = _strict_json(text, meta_path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ArtefactError(f"{meta_path}: not a phasm model (format field is {found!r})")
    version = meta.get("format_version")
    if type(version) is not int:
        raise ArtefactError(f"{meta_path}: format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ArtefactError(f"{meta_path}: format version {version} is newer than this phasm supports ({FORMAT_VERSION})")
    if version < FORMAT_VERSION:
        raise ArtefactError(f"{path}: model folder of format {version}, written by an older phasm without an integrity "
                            f"manifest; this phasm cannot verify it: train and save the model again")
    manifest = meta.get(MANIFEST)
    if not (isinstance(manifest, dict) and manifest.get("algorithm") == "sha256"
            and isinstance(manifest.get("digest"), str) and _HEX64.match(manifest["digest"])):
        raise ArtefactError(f"{meta_path}: missing or malformed manifest digest")
    digest = manifest_digest(meta)
    if digest != manifest["digest"]:
        raise ArtefactError(f"{path}: {METADATA_FILE} was changed after the model was saved (manifest digest "
                            f"{digest[:12]}..., recorded {manifest['digest'][:12]}...)")
    if expect_digest is not None and digest != expect_digest:
        raise ArtefactError(f"{path}: manifest digest {digest[:12]}... is not the expected {expect_digest[:12]}...")
    listed = meta.get("files")
    if not isinstance(listed, dict):
        raise ArtefactError(f"{meta_path}: missing field 'files'")
    files: dict[str, bytes] = {}
    for name, recorded in listed.items():
        if not isinstance(name, str) or Path(name).name != name or name in (".", "..", METADATA_FILE):
            raise ArtefactError(f"{path}: weights file name {name!r} is not a plain file name")
        if not (isinstance(recorded, str) and _HEX64.match(recorded)):
            raise ArtefactError(f"{path}: weights file {name} has no valid sha256 recorded")
        data = _read_regular(path / name, "weights file")
        actual = hashlib.sha256(data).hexdigest()
        if actual != recorded:
            raise ArtefactError(f"{path}: weights file {name} was changed after the model was saved "
                                f"(sha256 {actual[:12]}..., recorded {recorded[:12]}...); corrupted or truncated")
        files[name] = data
    extra = sorted(set(os.listdir(path)) - set(files) - {METADATA_FILE})
    if extra:
        raise ArtefactError(f"{path}: {extra[0]!r} is not part of the model (not listed in {METADATA_FILE}); "
                            f"a model folder holds only its own files")
    return VerifiedFolder(path, meta, files, digest)


def is_replaceable(path: Path) -> bool:
    """True if ``path`` is an empty folder or holds a phasm model (its metadata and listed files) and nothing else."""
    try:
        names = set(os.listdir(path))
    except NotADirectoryError:
        return False
    if not names:
        return True
    try:
        meta = json.loads((path / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("files"), dict):
        return False
    return names <= {METADATA_FILE, *map(str, meta["files"])}


def _blocking_file(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` that is not a folder (so ``path`` cannot be created)."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def check_destination(path: str | os.PathLike[str]) -> None:
    """Refuse a path a model folder cannot be written to: under a file, a file, or a folder that is not a model.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"; _ = f.write_text("x")
    >>> check_destination(f / "model")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    phasm.errors.ArtefactError: cannot write the model folder .../notes.txt/model: .../notes.txt is a file, not a folder
    """
    path = Path(path)
    blocker = _blocking_file(path)
    if blocker is not None:
        raise ArtefactError(f"cannot write the model folder {path}: {blocker} is a file, not a folder")
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise ArtefactError(f"{path} exists and is a file; refusing to overwrite it with a model folder")
        if not is_replaceable(path):
            raise ArtefactError(f"{path} exists and is not a phasm model folder; refusing to overwrite it")


def _fresh_dir(beside: Path, tag: str) -> Path:
    """A new empty folder next to ``beside``, created with mode 0o777 minus the process umask."""
    while True:
        candidate = beside.parent / f".{beside.name}.{tag}-{secrets.token_hex(6)}"
        try:
            candidate.mkdir(0o777)
            return candidate
        except FileExistsError:
            continue


def write_folder(path: str | os.PathLike[str], write_files: Callable[[Path], list[str]],
                 make_meta: Callable[[], dict[str, Any]]) -> tuple[Path, str]:
    """Write a model folder atomically: ``write_files(dir)`` writes the weights and names them, then
    ``make_meta()`` gives the metadata, to which ``files`` and ``manifest`` are added.  Returns the path and
    the manifest digest."""
    path = Path(path)
    check_destination(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh_dir(path, "new")
    old: Path | None = None
    try:
        names = write_files(tmp)
        record = dict(make_meta())
        record["files"] = {name: sha256_file(tmp / name) for name in names}
        record = json.loads(json.dumps(record, default=json_default))  # the values exactly as they read back
        digest = manifest_digest(record)
        record[MANIFEST] = {"algorithm": "sha256", "digest": digest}
        (tmp / METADATA_FILE).write_text(json.dumps(record, indent=1))
        if path.exists():
            old = path.parent / f".{path.name}.old-{secrets.token_hex(6)}"
            path.rename(old)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists():
            old.rename(path)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path, digest
