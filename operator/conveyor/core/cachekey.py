"""Cache key templates: `npm-{{ hashFiles('package-lock.json') }}-{{ branch }}`.

A key is rendered where the job's files are (the local workspace, or inside the job's pod),
so `hashFiles` is given to `render_cache_key` as a function. The digest rule is fixed here so
every executor computes the same key for the same files: sha256 over the sorted
`<relative path>\\0<sha256 of content>\\n` lines of every matched regular file; no match gives
an empty string (as GitHub Actions does).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from conveyor.core.models import RunContext
from conveyor.core.naming import short_hash

_EXPR = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_HASH_FILES = re.compile(r"^hashFiles\(\s*(.*?)\s*\)$")
_STRING = re.compile(r"""\s*(?:'([^']*)'|"([^"]*)")\s*(?:,|$)""")
CONTEXT_FIELDS = ("branch", "event", "commit")
KEY_MAX = 200


@dataclass(frozen=True)
class Literal:
    text: str


@dataclass(frozen=True)
class HashFiles:
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class ContextField:
    name: str


Segment = Literal | HashFiles | ContextField


class CacheKeyError(ValueError):
    pass


def parse_cache_key(template: str) -> list[Segment]:
    """Split a template into literal text, `hashFiles(...)` calls and context fields."""
    segments: list[Segment] = []
    pos = 0
    for match in _EXPR.finditer(template):
        if match.start() > pos:
            segments.append(Literal(template[pos : match.start()]))
        segments.append(_parse_expression(match.group(1)))
        pos = match.end()
    rest = template[pos:]
    if "{{" in rest or "}}" in rest:
        raise CacheKeyError("unbalanced '{{' or '}}' in the cache key")
    if rest:
        segments.append(Literal(rest))
    return segments


def _parse_expression(expr: str) -> Segment:
    if expr in CONTEXT_FIELDS:
        return ContextField(expr)
    call = _HASH_FILES.match(expr)
    if not call:
        allowed = ", ".join(CONTEXT_FIELDS)
        raise CacheKeyError(
            f"unknown expression {{{{ {expr} }}}}: "
            f"use hashFiles('path/or/glob', ...) or one of {allowed}"
        )
    args = call.group(1)
    patterns: list[str] = []
    pos = 0
    while pos < len(args):
        arg = _STRING.match(args, pos)
        if not arg or arg.end() == pos:
            raise CacheKeyError(f"hashFiles arguments must be quoted strings: hashFiles({args})")
        patterns.append(arg.group(1) if arg.group(1) is not None else arg.group(2))
        pos = arg.end()
    if not patterns:
        raise CacheKeyError("hashFiles needs at least one file or glob pattern")
    return HashFiles(tuple(patterns))


def hash_file_patterns(template: str) -> list[tuple[str, ...]]:
    """The `hashFiles` pattern lists a template uses (what an executor must hash)."""
    return [s.patterns for s in parse_cache_key(template) if isinstance(s, HashFiles)]


def render_cache_key(
    template: str, context: RunContext, hash_files: Callable[[tuple[str, ...]], str]
) -> str:
    """The concrete key, filesystem- and label-safe (`[A-Za-z0-9._-]`, bounded length)."""
    parts: list[str] = []
    for segment in parse_cache_key(template):
        if isinstance(segment, Literal):
            parts.append(segment.text)
        elif isinstance(segment, ContextField):
            parts.append(getattr(context, segment.name) or "")
        else:
            parts.append(hash_files(segment.patterns))
    return safe_key("".join(parts))


def safe_key(key: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._") or "_"
    if len(cleaned) <= KEY_MAX and cleaned == key:
        return cleaned
    return f"{cleaned[: KEY_MAX - 9]}-{short_hash(key)}"


def combine_file_digests(files: Iterable[tuple[str, str]]) -> str:
    """hashFiles' value from `(relative path, sha256 hex of content)` pairs; '' for none."""
    lines = sorted(f"{path}\0{digest}\n" for path, digest in files)
    if not lines:
        return ""
    return hashlib.sha256("".join(lines).encode()).hexdigest()
