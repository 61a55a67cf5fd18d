"""Events and notifications are decided from the previous and the new status only."""

from __future__ import annotations

from conveyor.core.models import Approval, JobStatus, RunStatus, StageStatus
from conveyor.operator.reconciler import _significant, dump_status
from conveyor.operator.transitions import transitions


def status(
    phase: str = "Running", job: str = "Pending", stage: str = "Running", **kw: object
) -> RunStatus:
    return RunStatus.model_validate(
        {
            "phase": phase,
            "durationSeconds": 12.0,
            "stages": [
                {
                    "name": "check",
                    "status": stage,
                    "jobs": [{"name": "lint", "status": job, "jobName": "r-lint"}],
                },
                *kw.get("extra", []),  # type: ignore[misc]
            ],
        }
    )


def reasons(before: RunStatus | None, after: RunStatus) -> list[str]:
    return [t.reason for t in transitions("r", before, after, {"deploy": ["anna"]})]


def test_job_transitions_once() -> None:
    assert reasons(None, status(job="Running")) == ["JobStarted"]
    assert reasons(status(job="Running"), status(job="Running")) == []
    assert reasons(status(job="Running"), status(job="Succeeded")) == ["JobSucceeded"]
    assert reasons(status(job="Running"), status(job="Failed")) == ["JobFailed"]


def test_a_retry_is_a_new_attempt() -> None:
    before = status(job="Failed")
    after = status(job="Running")
    after.stages[0].jobs[0] = JobStatus(name="lint", status="Running", attempt=1)
    assert reasons(before, after) == ["JobStarted"]


def test_gate_waiting_notifies_and_decision_is_an_event() -> None:
    waiting = StageStatus(name="deploy", status="Waiting")
    before = status(extra=[])
    after = status(phase="WaitingApproval", extra=[waiting.model_dump(by_alias=True)])
    changes = transitions("r", before, after, {"deploy": ["anna"]})
    assert [c.reason for c in changes] == ["StageWaiting"]
    assert changes[0].notification is not None
    assert changes[0].notification["type"] == "pipeline_gate"
    assert changes[0].notification["approvers"] == ["anna"]
    assert "text" in changes[0].notification
    assert reasons(after, after) == []
    approved = StageStatus(
        name="deploy", status="Running", approval=Approval(decision="Approved", by="anna")
    )
    decided = status(extra=[approved.model_dump(by_alias=True)])
    assert reasons(after, decided) == ["GateApproved"]


def test_run_end_notifies_once() -> None:
    done = status(phase="Succeeded", job="Succeeded", stage="Succeeded")
    changes = transitions("r", status(job="Succeeded"), done)
    assert [c.reason for c in changes] == ["RunSucceeded"]
    assert changes[0].notification == {
        "type": "pipeline_complete",
        "pipelineId": "r",
        "status": "Succeeded",
        "duration": 12.0,
        "text": changes[0].notification["text"] if changes[0].notification else "",
    }
    assert transitions("r", done, done) == []


def test_status_comparison_ignores_nulls_and_running_durations() -> None:
    running = dump_status(status(job="Running"))
    stored = {k: v for k, v in running.items() if v is not None}  # what a merge patch keeps
    stored["durationSeconds"] = 99.0
    assert _significant(stored) == _significant(running)
    assert _significant(dump_status(status(job="Succeeded"))) != _significant(running)
