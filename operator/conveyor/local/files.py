"""Workspace files for the local runner: source copies, path patterns, copies and `hashFiles`.

Patterns in `cache.paths`, `artifacts.paths` and `hashFiles(...)` are relative to the job's
workspace and use the same glob rule as the rest of Conveyor (`*` stays in one directory,
`**` crosses directories). Copies keep symbolic links as links so a workspace never reaches
outside itself through them.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from conveyor.core.cachekey import combine_file_digests
from conveyor.core.conditions import glob_match

_GLOB_CHARS = re.compile(r"[*?]")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,\[\]+-]+")


def safe_filename(name: str) -> str:
    """A file name for a job name (matrix values may hold `/` or spaces)."""
    return _UNSAFE.sub("_", name).strip(".") or "_"


def copy_source(source: Path, dest: Path, exclude: Iterable[Path] = ()) -> None:
    """Copy the source tree into `dest` (which must not exist), leaving out `.git` and `exclude`.

    `exclude` holds directories that may live inside the source (the run directory, the cache)
    and must not be copied into every workspace.
    """
    skipped = {p.resolve() for p in exclude}

    def ignore(directory: str, names: list[str]) -> list[str]:
        here = Path(directory).resolve()
        return [n for n in names if n == ".git" or (here / n) in skipped]

    shutil.copytree(source, dest, symlinks=True, ignore=ignore)


def normalise_pattern(pattern: str) -> str:
    text = pattern.strip()
    while text.startswith("./"):
        text = text[2:]
    return text.rstrip("/")


def walk_files(root: Path) -> Iterator[str]:
    """Relative paths (with `/`) of every entry under `root` that is not a directory."""
    for directory, dirs, files in os.walk(root):
        rel = os.path.relpath(directory, root)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        # os.walk lists symlinks to directories in `dirs` without descending into them.
        for name in files + [d for d in dirs if os.path.islink(os.path.join(directory, d))]:
            yield prefix + name


def expand_paths(root: Path, patterns: Iterable[str]) -> list[str]:
    """The relative paths under `root` that `patterns` name: literal paths or globs."""
    found: list[str] = []
    globs: list[str] = []
    for raw in patterns:
        pattern = normalise_pattern(raw)
        if not pattern or pattern.startswith("/") or ".." in pattern.split("/"):
            continue  # validation keeps paths inside the workspace; ignore anything else
        if _GLOB_CHARS.search(pattern):
            globs.append(pattern)
        elif os.path.lexists(root / pattern):
            found.append(pattern)
    if globs:
        found.extend(f for f in walk_files(root) if any(glob_match(f, g) for g in globs))
    # A directory already covers what is inside it.
    unique = sorted(set(found))
    return [p for p in unique if not any(p.startswith(q + "/") for q in unique if q != p)]


def copy_paths(src_root: Path, dst_root: Path, relpaths: Iterable[str]) -> int:
    """Copy each relative path (file, link or directory) from one root to the other; merges."""
    copied = 0
    for rel in relpaths:
        src, dst = src_root / rel, dst_root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir() and not src.is_symlink():
            shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
        else:
            if dst.is_symlink() or dst.is_file():
                dst.unlink()
            shutil.copy2(src, dst, follow_symlinks=False)
        copied += 1
    return copied


def copy_tree_into(src: Path, dst: Path) -> None:
    """Merge the whole of `src` into `dst` (for restoring caches and artifacts)."""
    if src.is_dir():
        copy_paths(src, dst, sorted(os.listdir(src)))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_files(root: Path, patterns: tuple[str, ...]) -> str:
    """`hashFiles(...)` over a workspace, by the digest rule of `conveyor.core.cachekey`."""
    wanted = [normalise_pattern(p) for p in patterns]
    pairs: list[tuple[str, str]] = []
    for rel in walk_files(root):
        if not any(glob_match(rel, p) for p in wanted):
            continue
        path = root / rel
        if stat.S_ISREG(path.lstat().st_mode):  # regular files only, links are not followed
            pairs.append((rel, file_sha256(path)))
    return combine_file_digests(pairs)
