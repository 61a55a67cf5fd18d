"""Durations as users write them: seconds (`90`) or strings (`90s`, `10m`, `1h30m`, `7d`)."""

from __future__ import annotations

import math
import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
HINT = "use seconds (90) or a duration string such as 90s, 10m, 1h30m or 7d"


def parse_duration(value: int | float | str) -> float:
    """Return the duration in seconds; raise ValueError naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: {HINT}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"invalid duration {value!r}: must be positive; {HINT}")
        return float(value)
    text = value.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return parse_duration(float(text))
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"invalid duration {value!r}: {HINT}")
    if total <= 0:
        raise ValueError(f"invalid duration {value!r}: must be positive; {HINT}")
    return total


def format_duration(seconds: float) -> str:
    """Short human form (`1h2m`, `4m10s`, `3.2s`) for CLI output."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{secs}s"
