"""What the planner sees of a run's Kubernetes Jobs: Job and pod dicts -> `JobObservation`.

Pure functions over the API's JSON, so every mapping (success read from the pod the moment its
container exits, OOMKilled, DeadlineExceeded, Evicted, image pull failures, cache hits from the
termination message) is unit-tested without a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from conveyor.core.manifests import (
    ANNOTATION_FAILURE_MESSAGE,
    ANNOTATION_FAILURE_REASON,
    ANNOTATION_JOB_NAME,
    LABEL_ATTEMPT,
    LABEL_ROLE,
    MAIN_CONTAINER,
    ROLE_JOB,
)
from conveyor.core.planner import JobObservation

# Waiting reasons that will not fix themselves in time: the job fails with that reason.
FATAL_WAITING_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
REASON_INIT_FAILED = "InitContainerFailed"
REASON_CLAIM_NOT_FOUND = "ClaimNotFound"


@dataclass(frozen=True)
class Observed:
    """One observation plus what the adapter must do: a pod stuck for good needs its Job ended."""

    observation: JobObservation
    job: Mapping[str, Any]
    stuck_reason: str | None = None
    stuck_message: str | None = None


def parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _condition(job: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in job.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def _container_status(pod: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status.get("name") == name:
            return dict(status)
    return None


def _termination_info(terminated: Mapping[str, Any]) -> dict[str, Any]:
    try:
        info = json.loads(terminated.get("message") or "{}")
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _pod_failure(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    """A reason and message when a pod cannot run its commands any more (before they finish)."""
    status = pod.get("status", {})
    statuses = list(status.get("initContainerStatuses") or []) + list(
        status.get("containerStatuses") or []
    )
    for item in statuses:
        waiting = (item.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in FATAL_WAITING_REASONS:
            image = item.get("image", "")
            message = waiting.get("message") or f"cannot pull image {image!r}"
            return reason, message
    for cond in status.get("conditions") or []:
        message = cond.get("message") or ""
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and "persistentvolumeclaim" in message
            and "not found" in message
        ):
            # A missing claim (the pipeline's cache.claimName) will not appear by itself.
            return REASON_CLAIM_NOT_FOUND, message
    return None


def _init_failure(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    for item in pod.get("status", {}).get("initContainerStatuses") or []:
        terminated = (item.get("state") or {}).get("terminated") or {}
        if terminated and terminated.get("exitCode", 0) != 0:
            name = item.get("name", "init")
            code = terminated.get("exitCode")
            return REASON_INIT_FAILED, f"the {name} step failed with exit code {code}"
    return None


def observe_job(job: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> Observed:
    """The observation of one Job (one attempt) and its pods."""
    meta = job.get("metadata", {})
    status = job.get("status", {})
    annotations = meta.get("annotations") or {}
    attempt = int((meta.get("labels") or {}).get(LABEL_ATTEMPT, "0"))
    name = meta.get("name")
    started = parse_time(status.get("startTime")) or parse_time(meta.get("creationTimestamp"))
    pods = sorted(pods, key=lambda p: p.get("metadata", {}).get("creationTimestamp") or "")
    pod = pods[-1] if pods else None
    main = _container_status(pod, MAIN_CONTAINER) if pod else None
    state = (main or {}).get("state") or {}
    terminated = state.get("terminated") or {}
    info = _termination_info(terminated) if terminated else {}
    exit_code = terminated.get("exitCode") if terminated else None
    cached_hit = bool(info.get("cacheHit")) if info else False
    finished = parse_time(terminated.get("finishedAt")) if terminated else None

    def obs(state_: Any, **kw: Any) -> JobObservation:
        return JobObservation(
            attempt=attempt,
            state=state_,
            started_at=started,
            job_name=name,
            cached_hit=cached_hit,
            exit_code=kw.pop("exit_code", exit_code),
            **kw,
        )

    # A failure the operator recorded on the Job (a stuck pod) stays the answer for good.
    recorded = annotations.get(ANNOTATION_FAILURE_REASON)
    if recorded:
        done = finished or _failed_time(job) or started
        message = annotations.get(ANNOTATION_FAILURE_MESSAGE)
        return Observed(obs("Failed", reason=recorded, message=message, completed_at=done), job)

    complete = _condition(job, "Complete") or _condition(job, "SuccessCriteriaMet")
    if complete is not None or (terminated and exit_code == 0):
        done = (
            finished
            or parse_time(status.get("completionTime"))
            or parse_time((complete or {}).get("lastTransitionTime"))
        )
        return Observed(obs("Succeeded", exit_code=exit_code or 0, completed_at=done), job)

    failed = _condition(job, "Failed") or _condition(job, "FailureTarget")
    pod_reason = (pod or {}).get("status", {}).get("reason")
    if terminated and exit_code not in (None, 0):
        reason = terminated.get("reason")
        if pod_reason in ("Evicted", "DeadlineExceeded"):
            reason = pod_reason
        elif failed is not None and failed.get("reason") == "DeadlineExceeded":
            reason = "DeadlineExceeded"
        if reason in ("Error", "Completed"):
            reason = None
        message = f"exit code {exit_code}" + (f" ({reason})" if reason else "")
        return Observed(obs("Failed", reason=reason, message=message, completed_at=finished), job)
    if failed is not None or (pod is not None and pod.get("status", {}).get("phase") == "Failed"):
        reason = (failed or {}).get("reason")
        message = (failed or {}).get("message")
        if pod_reason in ("Evicted", "DeadlineExceeded"):
            reason = pod_reason
            message = (pod or {}).get("status", {}).get("message") or message
        init = _init_failure(pod) if pod is not None else None
        if init is not None:
            reason, message = init
        elif reason == "BackoffLimitExceeded":
            reason = "Failed"
        done = _failed_time(job) or finished or _last_finish(pod)
        return Observed(obs("Failed", reason=reason, message=message, completed_at=done), job)

    if pod is not None:
        stuck = _pod_failure(pod)
        if stuck is not None:
            reason, message = stuck
            return Observed(
                obs("Running" if "running" in state else "Pending"), job, reason, message
            )
    running = "running" in state
    return Observed(obs("Running" if running else "Pending"), job)


def _last_finish(pod: Mapping[str, Any] | None) -> datetime | None:
    """When the pod's last container ended (an init step that failed, say)."""
    if pod is None:
        return None
    status = pod.get("status", {})
    times = [
        parse_time(((item.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        for item in list(status.get("initContainerStatuses") or [])
        + list(status.get("containerStatuses") or [])
    ]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _failed_time(job: Mapping[str, Any]) -> datetime | None:
    cond = _condition(job, "Failed") or _condition(job, "FailureTarget")
    return parse_time((cond or {}).get("lastTransitionTime"))


def observe_run(
    jobs: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]
) -> dict[str, Observed]:
    """The latest attempt of each pipeline job of a run, by full (expanded) job name."""
    by_owner: dict[str, list[Mapping[str, Any]]] = {}
    for pod in pods:
        for ref in pod.get("metadata", {}).get("ownerReferences") or []:
            if ref.get("kind") == "Job":
                by_owner.setdefault(ref.get("uid", ""), []).append(pod)
    latest: dict[str, Mapping[str, Any]] = {}
    for job in jobs:
        meta = job.get("metadata", {})
        if (meta.get("labels") or {}).get(LABEL_ROLE, ROLE_JOB) != ROLE_JOB:
            continue
        full = (meta.get("annotations") or {}).get(ANNOTATION_JOB_NAME)
        if not full:
            continue
        attempt = int((meta.get("labels") or {}).get(LABEL_ATTEMPT, "0"))
        current = latest.get(full)
        if current is None or attempt > int(
            current.get("metadata", {}).get("labels", {}).get(LABEL_ATTEMPT, "0")
        ):
            latest[full] = job
    return {
        full: observe_job(job, by_owner.get(job.get("metadata", {}).get("uid", ""), []))
        for full, job in latest.items()
    }


def attempts_by_job(jobs: Iterable[Mapping[str, Any]]) -> dict[tuple[str, int], int]:
    """How many Job objects exist for each (pipeline job, attempt): must never exceed one."""
    counts: dict[tuple[str, int], int] = {}
    for job in jobs:
        meta = job.get("metadata", {})
        full = (meta.get("annotations") or {}).get(ANNOTATION_JOB_NAME)
        if full:
            key = (full, int((meta.get("labels") or {}).get(LABEL_ATTEMPT, "0")))
            counts[key] = counts.get(key, 0) + 1
    return counts
