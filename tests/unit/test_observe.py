"""Job and pod JSON -> JobObservation: the mapping the planner depends on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from conveyor.core.manifests import ANNOTATION_FAILURE_REASON, ANNOTATION_JOB_NAME
from conveyor.k8s.observe import attempts_by_job, observe_job, observe_run

T0 = "2026-12-04T10:00:00Z"
T1 = "2026-12-04T10:00:30Z"


def job(name: str = "lint", attempt: int = 0, uid: str = "j1", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"run-{name}-{attempt}",
            "uid": uid,
            "labels": {"conveyor.dev/attempt": str(attempt), "conveyor.dev/role": "job"},
            "annotations": {ANNOTATION_JOB_NAME: name},
            "creationTimestamp": T0,
        },
        "status": {"startTime": T0, **status},
    }


def pod(
    state: dict[str, Any], uid: str = "j1", phase: str = "Running", **status: Any
) -> dict[str, Any]:
    return {
        "metadata": {"creationTimestamp": T0, "ownerReferences": [{"kind": "Job", "uid": uid}]},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "main", "state": state}],
            **status,
        },
    }


def terminated(
    code: int, reason: str = "Completed", message: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "terminated": {
            "exitCode": code, "reason": reason, "startedAt": T0, "finishedAt": T1,
            "message": json.dumps(message or {"exitCode": code, "cacheHit": False}),
        }
    }  # fmt: skip


def failed_condition(reason: str) -> list[dict[str, str]]:
    return [{"type": "Failed", "status": "True", "reason": reason, "lastTransitionTime": T1}]


def test_pending_then_running() -> None:
    assert observe_job(job(), []).observation.state == "Pending"
    obs = observe_job(job(), [pod({"running": {"startedAt": T0}})]).observation
    assert obs.state == "Running"
    assert obs.started_at == datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    assert obs.job_name == "run-lint-0"


def test_success_is_seen_from_the_pod_before_the_job_completes() -> None:
    obs = observe_job(job(), [pod(terminated(0), phase="Succeeded")]).observation
    assert obs.state == "Succeeded" and obs.exit_code == 0
    assert obs.completed_at == datetime(2026, 12, 4, 10, 0, 30, tzinfo=UTC)


def test_cache_hit_from_the_termination_message() -> None:
    state = terminated(0, message={"exitCode": 0, "cacheKey": "npm-x", "cacheHit": True})
    assert observe_job(job(), [pod(state, phase="Succeeded")]).observation.cached_hit is True


def test_failed_command_keeps_its_exit_code() -> None:
    obs = observe_job(job(), [pod(terminated(2, "Error"), phase="Failed")]).observation
    assert (obs.state, obs.exit_code, obs.reason) == ("Failed", 2, None)


def test_oom_killed() -> None:
    obs = observe_job(job(), [pod(terminated(137, "OOMKilled"), phase="Failed")]).observation
    assert (obs.state, obs.reason, obs.exit_code) == ("Failed", "OOMKilled", 137)


def test_deadline_exceeded() -> None:
    j = job(conditions=failed_condition("DeadlineExceeded"))
    obs = observe_job(j, [pod(terminated(137, "Error"), phase="Failed")]).observation
    assert (obs.state, obs.reason) == ("Failed", "DeadlineExceeded")
    # The pod may already be gone: the Job's condition alone says it.
    assert observe_job(j, []).observation.reason == "DeadlineExceeded"


def test_evicted() -> None:
    p = pod({"terminated": {"exitCode": 137, "reason": "Error", "finishedAt": T1}}, phase="Failed")
    p["status"]["reason"] = "Evicted"
    p["status"]["message"] = "The node was low on resource: memory."
    obs = observe_job(job(), [p]).observation
    assert (obs.state, obs.reason) == ("Failed", "Evicted")


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull"])
def test_image_pull_failures_are_stuck_pods(reason: str) -> None:
    state = {"waiting": {"reason": reason, "message": "no such image"}}
    seen = observe_job(job(), [pod(state, phase="Pending")])
    assert seen.stuck_reason == reason and seen.stuck_message == "no such image"


def test_a_recorded_failure_wins_for_good() -> None:
    j = job(conditions=failed_condition("DeadlineExceeded"))
    j["metadata"]["annotations"][ANNOTATION_FAILURE_REASON] = "ErrImageNeverPull"
    obs = observe_job(j, []).observation
    assert (obs.state, obs.reason) == ("Failed", "ErrImageNeverPull")


def test_failed_init_step() -> None:
    p = pod({"waiting": {"reason": "PodInitializing"}}, phase="Failed")
    p["status"]["initContainerStatuses"] = [
        {"name": "source", "state": {"terminated": {"exitCode": 128, "finishedAt": T1}}}
    ]
    obs = observe_job(job(), [p]).observation
    assert (obs.state, obs.reason) == ("Failed", "InitContainerFailed")
    assert obs.completed_at == datetime(2026, 12, 4, 10, 0, 30, tzinfo=UTC)
    assert "source" in (obs.message or "")


def test_latest_attempt_per_job_and_pods_matched_by_owner() -> None:
    jobs = [job("lint", 0, "a"), job("lint", 1, "b"), job("unit", 0, "c")]
    pods = [pod(terminated(1, "Error"), uid="a", phase="Failed"), pod({"running": {}}, uid="b")]
    seen = observe_run(jobs, pods)
    assert seen["lint"].observation.attempt == 1
    assert seen["lint"].observation.state == "Running"
    assert seen["unit"].observation.state == "Pending"
    assert attempts_by_job(jobs) == {("lint", 0): 1, ("lint", 1): 1, ("unit", 0): 1}


def test_cleanup_jobs_are_not_pipeline_jobs() -> None:
    j = job()
    j["metadata"]["labels"]["conveyor.dev/role"] = "cleanup"
    assert observe_run([j], []) == {}


def test_a_missing_claim_is_a_stuck_pod() -> None:
    p = {
        "metadata": {"creationTimestamp": T0, "ownerReferences": [{"kind": "Job", "uid": "j1"}]},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": '0/1 nodes are available: persistentvolumeclaim "conveyor-cache" not found.',
                }
            ],
        },
    }
    seen = observe_job(job(), [p])
    assert seen.stuck_reason == "ClaimNotFound"
    assert "conveyor-cache" in (seen.stuck_message or "")
