"""Names: what users may call stages and jobs, and the Kubernetes names derived from them.

Child names are deterministic (a restarted operator must find what it created) and short
enough for Kubernetes (63 characters); a hash of the full identity keeps them unique even
when the readable part is truncated or two job names slugify alike.
"""

from __future__ import annotations

import hashlib
import re

NAME_MAX = 50
NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAME_RULE = (
    f"use lowercase letters, digits and '-', starting and ending with a letter or digit, "
    f"at most {NAME_MAX} characters"
)
K8S_NAME_MAX = 63
_HASH_LEN = 8


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a stage or job name, or None when it can."""
    if not name:
        return "must not be empty"
    if len(name) > NAME_MAX or not NAME_PATTERN.match(name):
        return f"{name!r} cannot become a Kubernetes name: {NAME_RULE}"
    return None


def slug(text: str) -> str:
    """DNS-label-like form of any text: `e2e[browser=firefox]` -> `e2e-browser-firefox`."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return out or "x"


def short_hash(*parts: str, length: int = _HASH_LEN) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
    return digest[:length]


def matrix_job_name(base: str, combo: dict[str, str]) -> str:
    """Name of one matrix combination: `e2e[browser=firefox,os=linux]` (declaration order)."""
    inner = ",".join(f"{key}={value}" for key, value in combo.items())
    return f"{base}[{inner}]"


def matrix_env_name(key: str) -> str:
    """Environment variable carrying a matrix value: `browser` -> `BROWSER`."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", key).upper()
    return name if not name[:1].isdigit() else f"_{name}"


def child_job_name(run_name: str, job_name: str, attempt: int) -> str:
    """Kubernetes Job name for one attempt of one pipeline job: `<run>-<job>-<hash>`, <= 63."""
    digest = short_hash(run_name, job_name, str(attempt))
    room = K8S_NAME_MAX - len(digest) - 1
    readable = f"{slug(run_name)}-{slug(job_name)}"[:room].rstrip("-")
    return f"{readable}-{digest}"


def label_value(text: str) -> str:
    """A label-safe form of `text` (<= 63 characters, alphanumeric at both ends)."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    if len(value) <= K8S_NAME_MAX and value == text:
        return value
    digest = short_hash(text)
    room = K8S_NAME_MAX - len(digest) - 1
    value = value[:room].rstrip("-_.")
    return f"{value}-{digest}" if value else digest
