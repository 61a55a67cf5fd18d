"""Who may decide a gate: the admission webhook's rules, as pure functions.

The webhook (enabled with `conveyor operator --webhook-url ...`) sees the authenticated user of
every change to a PipelineRun. On create it records the creator; when an approval or rejection
annotation appears it refuses users who are not listed in the gate's `approvers` (a user name,
or `group:<name>`), and the run's own creator; it records who decided in
`conveyor.dev/decided-by.<stage>`, which users cannot forge (the mutation restores it).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

CREATED_BY: Final = "conveyor.dev/created-by"
DECIDED_BY_PREFIX: Final = "conveyor.dev/decided-by."
APPROVE_PREFIX: Final = "approve.conveyor.dev/"
REJECT_PREFIX: Final = "reject.conveyor.dev/"
RESOLVED_SPEC: Final = "conveyor.dev/resolved-spec"


def decision_stage(key: str) -> str | None:
    for prefix in (APPROVE_PREFIX, REJECT_PREFIX):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return None


def new_decisions(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Stages whose approval or rejection annotation this change adds or alters."""
    stages: list[str] = []
    for key, value in new.items():
        stage = decision_stage(key)
        if stage is not None and old.get(key) != value and stage not in stages:
            stages.append(stage)
    return stages


def identity_patch(
    operation: str, old: Mapping[str, str], new: Mapping[str, str], username: str
) -> dict[str, str | None]:
    """Annotations to set (None: remove) so creator and deciders are the real users."""
    patch: dict[str, str | None] = {}
    if operation == "CREATE":
        patch[CREATED_BY] = username
        for key in new:
            if key.startswith(DECIDED_BY_PREFIX):
                patch[key] = None
        return patch
    if new.get(CREATED_BY) != old.get(CREATED_BY):
        patch[CREATED_BY] = old.get(CREATED_BY)
    decided = set(new_decisions(old, new))
    for key in set(old) | set(new):
        if key.startswith(DECIDED_BY_PREFIX) and new.get(key) != old.get(key):
            patch[key] = old.get(key)  # never set by hand
    for stage in decided:
        patch[DECIDED_BY_PREFIX + stage] = username
    return patch


def listed(username: str, groups: Sequence[str], approvers: Sequence[str]) -> bool:
    for entry in approvers:
        if entry.startswith("group:"):
            if entry[len("group:") :] in groups:
                return True
        elif entry == username:
            return True
    return False


def refusal(
    username: str,
    groups: Sequence[str],
    creator: str | None,
    stage: str,
    approvers: Mapping[str, Sequence[str]],
) -> str | None:
    """Why `username` may not decide `stage`, or None when they may."""
    if stage not in approvers:
        known = ", ".join(sorted(approvers)) or "none"
        return f"stage {stage!r} has no gate (gated stages: {known})"
    if creator is not None and username == creator:
        return f"{username} created this run and cannot decide its gate {stage!r}"
    if not listed(username, groups, approvers[stage]):
        return (
            f"{username} is not an approver of stage {stage!r} "
            f"(approvers: {', '.join(approvers[stage])})"
        )
    return None


def gate_approvers(spec: Mapping[str, Any]) -> dict[str, list[str]]:
    """Approvers of each gated stage of a pipeline spec (wire form)."""
    out: dict[str, list[str]] = {}
    for stage in spec.get("stages") or []:
        gate = stage.get("gate") if isinstance(stage, Mapping) else None
        if isinstance(gate, Mapping):
            out[str(stage.get("name"))] = [str(a) for a in gate.get("approvers") or []]
    return out


def run_spec(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The run's pipeline spec if the run itself holds it (resolved, or inline)."""
    kept = (body.get("metadata", {}).get("annotations") or {}).get(RESOLVED_SPEC)
    if kept:
        try:
            data = json.loads(kept)
        except ValueError:
            data = None
        if isinstance(data, Mapping):
            return data
    inline = (body.get("spec") or {}).get("pipelineSpec")
    return inline if isinstance(inline, Mapping) else None


def serves(patterns: Sequence[str], namespace: str) -> bool:
    """Whether an operator started with `--namespace` patterns serves `namespace` (kopf's rules:
    globs, `!` excludes; no pattern means every namespace)."""
    if not patterns:
        return True
    included = patterns[0].startswith("!")
    for pattern in patterns:
        if pattern.startswith("!"):
            included = included and not fnmatch.fnmatch(namespace, pattern[1:])
        else:
            included = included or fnmatch.fnmatch(namespace, pattern)
    return included
