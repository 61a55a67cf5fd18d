"""What changed between two statuses of a run, as Events and notifications.

Decided only from the previous and the new status (both persisted), so each transition is
announced once, whether the operator ran throughout or restarted in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from conveyor.core.models import TERMINAL_RUN_PHASES, JobStatus, RunStatus


@dataclass(frozen=True)
class Transition:
    reason: str
    message: str
    type: Literal["Normal", "Warning"] = "Normal"
    notification: dict[str, Any] | None = field(default=None)


def _jobs(status: RunStatus | None) -> dict[str, JobStatus]:
    if status is None:
        return {}
    return {job.name: job for stage in status.stages for job in stage.jobs}


def transitions(
    run_name: str,
    previous: RunStatus | None,
    new: RunStatus,
    approvers: dict[str, list[str]] | None = None,
) -> list[Transition]:
    """Every transition a person cares about, in a stable order."""
    out: list[Transition] = []
    before = _jobs(previous)
    for name, job in _jobs(new).items():
        old = before.get(name)
        same_attempt = old is not None and old.attempt == job.attempt
        old_state = old.status if same_attempt and old is not None else None
        if job.status == old_state:
            continue
        where = f" (Job {job.job_name})" if job.job_name else ""
        if job.status == "Running":
            out.append(Transition("JobStarted", f"job {name} started{where}"))
        elif job.status == "Succeeded":
            hit = ", cache hit" if job.cached_hit else ""
            out.append(Transition("JobSucceeded", f"job {name} succeeded{hit}{where}"))
        elif job.status == "Failed":
            why = job.reason or (f"exit code {job.exit_code}" if job.exit_code else "failed")
            detail = f": {job.message}" if job.message else ""
            out.append(
                Transition("JobFailed", f"job {name} failed ({why}){detail}{where}", "Warning")
            )
    old_stages = {s.name: s for s in previous.stages} if previous else {}
    for stage in new.stages:
        old_stage = old_stages.get(stage.name)
        was_waiting = old_stage is not None and old_stage.status == "Waiting"
        if stage.status == "Waiting" and not was_waiting:
            listed = (approvers or {}).get(stage.name, [])
            out.append(
                Transition(
                    "StageWaiting",
                    f"stage {stage.name} is waiting for approval"
                    + (f" from {', '.join(listed)}" if listed else ""),
                    notification={
                        "type": "pipeline_gate",
                        "pipelineId": run_name,
                        "stage": stage.name,
                        "approvers": listed,
                        "text": f"Pipeline run {run_name}: stage {stage.name} is waiting for "
                        f"approval ({', '.join(listed) or 'any approver'}).",
                    },
                )
            )
        had_approval = old_stage is not None and old_stage.approval is not None
        if stage.approval is not None and not had_approval:
            decision = stage.approval.decision
            by = f" by {stage.approval.by}" if stage.approval.by else ""
            note = f": {stage.approval.message}" if stage.approval.message else ""
            kind: Literal["Normal", "Warning"] = "Normal" if decision == "Approved" else "Warning"
            out.append(
                Transition(
                    f"Gate{decision}", f"stage {stage.name} {decision.lower()}{by}{note}", kind
                )
            )
    was_done = previous is not None and previous.phase in TERMINAL_RUN_PHASES
    if new.phase in TERMINAL_RUN_PHASES and not was_done:
        condition = new.conditions[0] if new.conditions else None
        detail = f": {condition.message}" if condition is not None and condition.message else ""
        duration = new.duration_seconds or 0.0
        kind = "Normal" if new.phase in ("Succeeded", "Skipped") else "Warning"
        out.append(
            Transition(
                f"Run{new.phase}",
                f"run {new.phase.lower()} after {duration:.1f}s{detail}",
                kind,
                notification={
                    "type": "pipeline_complete",
                    "pipelineId": run_name,
                    "status": new.phase,
                    "duration": duration,
                    "text": f"Pipeline run {run_name} {new.phase.lower()} "
                    f"after {duration:.1f}s{detail}",
                },
            )
        )
    return out
