"""Stage conditions and pipeline triggers, evaluated over the run context.

Conditions are CEL (the Common Expression Language) over `branch`, `event`, `commit` and
`triggeredBy`, with `glob(text, pattern)` for branch patterns. The seed's shorthands
(`branch:main`, `branch:!main`, `event:push`, `branch:release/*`) are rewritten into CEL first.
Nothing here ever calls Python's `eval`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cel

from conveyor.core.models import RunContext, Trigger

CONTEXT_VARIABLES = ("branch", "event", "commit", "triggeredBy")
_SHORTHAND = re.compile(r"^\s*(branch|event|commit|triggeredBy)\s*:\s*(!?)\s*(\S+)\s*$")


class ConditionError(ValueError):
    """A condition that cannot be compiled or evaluated."""


def glob_match(text: str, pattern: str) -> bool:
    """Shell-style match where `*` stays inside one path segment and `**` crosses them."""
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            regex += ".*"
            i += 2
        elif pattern[i] == "*":
            regex += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            regex += "[^/]"
            i += 1
        else:
            regex += re.escape(pattern[i])
            i += 1
    return re.fullmatch(regex, text) is not None


def to_cel(condition: str) -> str:
    """Rewrite a seed shorthand (`branch:!main`) into CEL; CEL passes through unchanged."""
    match = _SHORTHAND.match(condition)
    if not match or "==" in condition:
        return condition
    var, negate, value = match.groups()
    test = f"glob({var}, {_cel_string(value)})"
    return f"!{test}" if negate else test


def _cel_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class CompiledCondition:
    source: str
    program: Any


@lru_cache(maxsize=1024)
def compile_condition(condition: str) -> CompiledCondition:
    """Compile a condition, or raise ConditionError with a message fit for a user."""
    expression = to_cel(condition)
    try:
        program = cel.compile(expression)
    except (ValueError, RuntimeError) as err:
        raise ConditionError(_first_lines(str(err))) from None
    unknown = [name for name in program.variables() if name not in CONTEXT_VARIABLES]
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, CONTEXT_VARIABLES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConditionError(
            f"unknown name {name!r}{hint} (conditions can use {', '.join(CONTEXT_VARIABLES)})"
        )
    return CompiledCondition(source=condition, program=program)


def evaluate_condition(condition: str, context: RunContext) -> bool:
    """True when the stage should run in this context."""
    compiled = compile_condition(condition)
    variables = {name: _context_value(context, name) for name in CONTEXT_VARIABLES}
    try:
        result = compiled.program.execute(cel.Context(variables, {"glob": glob_match}))
    except (ValueError, RuntimeError, TypeError) as err:
        raise ConditionError(_first_lines(str(err))) from None
    if not isinstance(result, bool):
        raise ConditionError(f"must evaluate to true or false, got {result!r}")
    return result


def trigger_matches(trigger: Trigger | None, context: RunContext) -> tuple[bool, str]:
    """Whether a run in `context` is wanted, and why not. Unset context fields are not checked."""
    if trigger is None:
        return True, ""
    branch = context.branch
    if (
        trigger.branches
        and branch is not None
        and not any(glob_match(branch, pattern) for pattern in trigger.branches)
    ):
        wanted = ", ".join(trigger.branches)
        return False, f"branch {branch!r} does not match trigger branches [{wanted}]"
    if trigger.events and context.event is not None and context.event not in trigger.events:
        wanted = ", ".join(trigger.events)
        return False, f"event {context.event!r} is not one of the trigger events [{wanted}]"
    return True, ""


def _context_value(context: RunContext, name: str) -> str:
    value = {
        "branch": context.branch,
        "event": context.event,
        "commit": context.commit,
        "triggeredBy": context.triggered_by,
    }[name]
    return value or ""


def _first_lines(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines()[:4] if line.strip())


def suggestion(name: str, choices: list[str]) -> str:
    """`; did you mean 'x'?` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
