"""The local job cache: one directory per rendered key, published atomically.

An entry is built in a private temporary directory inside the cache directory and then
renamed onto its final name (`<cache>/<key>`). `rename` is atomic on one filesystem, so a
reader either sees no entry or a complete one. If the final name already exists (another run
published the same key first) the new copy is discarded: entries are never overwritten, so
a reader never sees one change under it. Temporary directories start with `.tmp-` and are
never read.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from conveyor.local.files import copy_paths, copy_tree_into, expand_paths

MANIFEST = "manifest.json"
FILES = "files"
TMP_PREFIX = ".tmp-"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "conveyor" / "cache"


class LocalCache:
    """Cache entries under one directory; safe for concurrent runs on one machine."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def entry(self, key: str) -> Path:
        if not key or key.startswith(".") or "/" in key:
            raise ValueError(f"invalid cache key {key!r}")
        return self.root / key

    def lookup(self, key: str) -> Path | None:
        """The published entry for `key`, or None. Only fully renamed entries are visible."""
        path = self.entry(key)
        return path if (path / MANIFEST).is_file() else None

    def restore(self, key: str, workspace: Path) -> bool:
        """Copy the entry's files into `workspace`; False on a miss."""
        found = self.lookup(key)
        if found is None:
            return False
        copy_tree_into(found / FILES, workspace)
        return True

    def save(self, key: str, workspace: Path, patterns: list[str]) -> bool:
        """Publish `patterns` of `workspace` under `key`; False when another run got there first."""
        final = self.entry(key)
        if self.lookup(key) is not None:
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{key[:40]}-", dir=self.root))
        try:
            paths = expand_paths(workspace, patterns)
            copy_paths(workspace, tmp / FILES, paths)
            (tmp / FILES).mkdir(exist_ok=True)
            manifest = {"key": key, "paths": paths, "created": datetime.now(UTC).isoformat()}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            try:
                os.rename(tmp, final)
            except OSError as err:
                # The final name exists and is not empty: someone else published this key.
                if err.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    return False
                raise
            return True
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
