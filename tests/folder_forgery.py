"""What an attacker who can write a model folder does: edit it, then recompute every digest (reseal).

The manifest digest detects edits that are not resealed; these helpers let tests check what stands
behind it when the attacker does reseal (the loader's own checks: never a payload, one clear error).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from phasm.train.model_folder import manifest_digest, sha256_file


def read_meta(path: Path) -> dict[str, Any]:
    return json.loads((Path(path) / "phasm.json").read_text())


def reseal(path: Path, meta: dict[str, Any] | None = None) -> None:
    """Write ``meta`` (default: the folder's own) with each listed file's sha256 and the manifest recomputed."""
    path = Path(path)
    meta = read_meta(path) if meta is None else meta
    files = meta.get("files")
    if isinstance(files, dict):
        meta["files"] = {n: sha256_file(path / n) if (path / str(n)).is_file() else d for n, d in files.items()}
    manifest = meta.get("manifest")
    if isinstance(manifest, dict):
        manifest["digest"] = manifest_digest(meta)
    (path / "phasm.json").write_text(json.dumps(meta))
