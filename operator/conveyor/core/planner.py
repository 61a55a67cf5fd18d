"""The planner: from the facts of a run to what to do next and the run's new status.

`plan(facts)` is a pure function. It holds no state between calls, so a restarted operator
(or a resumed local run) gets the same answer from the same facts. Both executors drive it
the same way: observe, call `plan`, carry out `actions`, write `status`, and call again when
something changes or at `next_check_at`.

Rules (PRODUCT.md): stages run in order; inside the active stage a job starts the instant its
own dependencies are done; a false condition skips a stage without failing anything; a
failure stops new starts (running jobs finish, the rest is skipped) and `finally` jobs run
last; gates wait for a decision or time out; a run timeout fails the run; cancel stops all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Literal

from conveyor.core.conditions import evaluate_condition, trigger_matches
from conveyor.core.durations import parse_duration
from conveyor.core.graph import Graph, JobNode, StageNode
from conveyor.core.models import (
    FINALLY_STAGE,
    Approval,
    Condition,
    JobState,
    JobStatus,
    RunContext,
    RunPhase,
    RunStatus,
    StageState,
    StageStatus,
    Trigger,
)

ObservedState = Literal["Pending", "Running", "Succeeded", "Failed"]

# Reasons shown on jobs, stages and the run's condition.
REASON_UPSTREAM_FAILED = "UpstreamFailed"
REASON_CONDITION_FALSE = "ConditionFalse"
REASON_TRIGGER_MISMATCH = "TriggerMismatch"
REASON_GATE_REJECTED = "GateRejected"
REASON_GATE_TIMED_OUT = "GateTimedOut"
REASON_CANCELLED = "Cancelled"
REASON_RUN_TIMEOUT = "RunTimeout"
REASON_DEADLINE = "DeadlineExceeded"
REASON_ALLOWED_FAILURE = "AllowedFailure"
REASON_RETRYING = "Retrying"


@dataclass(frozen=True)
class JobObservation:
    """What an executor saw of the latest attempt of one pipeline job."""

    attempt: int
    state: ObservedState
    exit_code: int | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    reason: str | None = None
    message: str | None = None
    cached_hit: bool = False
    job_name: str | None = None


@dataclass(frozen=True)
class GateDecision:
    decision: Literal["Approved", "Rejected"]
    by: str | None = None
    at: datetime | None = None
    message: str | None = None


@dataclass(frozen=True)
class Facts:
    """Everything the planner may look at. `now` is passed in: the core has no clock."""

    graph: Graph
    context: RunContext
    started_at: datetime
    now: datetime
    observed: Mapping[str, JobObservation] = field(default_factory=dict)
    decisions: Mapping[str, GateDecision] = field(default_factory=dict)
    trigger: Trigger | None = None
    run_timeout_seconds: float | None = None
    cancelled_at: datetime | None = None


@dataclass(frozen=True)
class StartJob:
    job: JobNode
    attempt: int
    artifacts_from: tuple[str, ...]


@dataclass(frozen=True)
class StopJob:
    name: str
    attempt: int
    reason: str


Action = StartJob | StopJob


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    status: RunStatus
    next_check_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status.phase in {"Succeeded", "Failed", "Cancelled", "Skipped"}

    @property
    def starts(self) -> list[StartJob]:
        return [a for a in self.actions if isinstance(a, StartJob)]

    @property
    def stops(self) -> list[StopJob]:
        return [a for a in self.actions if isinstance(a, StopJob)]

    @property
    def waiting_stage(self) -> str | None:
        return next((s.name for s in self.status.stages if s.status == "Waiting"), None)


# Internal classification of one job in this plan.
_Kind = Literal[
    "not_started", "active", "succeeded", "allowed_failure", "failed", "skipped", "retry"
]


@dataclass
class _Job:
    node: JobNode
    kind: _Kind = "not_started"
    obs: JobObservation | None = None
    skip_reason: str | None = None
    fail_reason: str | None = None
    completed_at: datetime | None = None
    timed_out: bool = False


class _Planner:
    def __init__(self, facts: Facts) -> None:
        self.f = facts
        self.g = facts.graph
        self.jobs: dict[str, _Job] = {name: _Job(node) for name, node in self.g.jobs.items()}
        self.actions: list[Action] = []
        self.deadlines: list[datetime] = []
        self.failed = False  # fail-stop: nothing new starts except finally jobs
        self.failure_notes: list[str] = []
        self.stage_status: list[StageStatus] = []

    # -- observation ----------------------------------------------------------------------
    def classify(self) -> None:
        for job in self.jobs.values():
            obs = self.f.observed.get(job.node.name)
            job.obs = obs
            if obs is None:
                continue
            deadline = _deadline(obs.started_at, job.node.timeout_seconds)
            if obs.state in ("Pending", "Running"):
                if deadline is not None and self.f.now >= deadline:
                    job.kind, job.timed_out, job.completed_at = "failed", True, deadline
                    self.actions.append(StopJob(job.node.name, obs.attempt, REASON_DEADLINE))
                else:
                    job.kind = "active"
                    if deadline is not None:
                        self.deadlines.append(deadline)
            elif obs.state == "Succeeded":
                late = (
                    deadline is not None
                    and obs.completed_at is not None
                    and obs.completed_at > deadline
                )
                job.kind = "succeeded" if not late else "failed"
                job.timed_out = late
                job.completed_at = deadline if late else obs.completed_at
            else:
                job.kind = "failed"
                job.completed_at = obs.completed_at
                job.timed_out = obs.reason == REASON_DEADLINE

    def settle_failures(self, names: tuple[str, ...], *, allow_retry: bool) -> None:
        """Turn failed attempts into retries, allowed failures or real failures.

        Final failures are settled first so that a job failing for good in the same stage
        stops the retry of another (nothing new starts after a failure).
        """
        failed = [self.jobs[n] for n in names if self.jobs[n].kind == "failed"]
        retryable: list[_Job] = []
        for job in failed:
            assert job.obs is not None or job.fail_reason is not None
            attempt = job.obs.attempt if job.obs is not None else 0
            if allow_retry and attempt < job.node.retries and job.fail_reason is None:
                retryable.append(job)
            elif job.node.allow_failure:
                job.kind = "allowed_failure"
            else:
                self.failed_job(job)
        for job in retryable:
            if self.failed and not job.node.is_finally:
                self.failed_job(job)
            else:
                job.kind = "retry"

    def failed_job(self, job: _Job) -> None:
        if not job.node.is_finally:
            self.failed = True
        if job.fail_reason is None:
            job.fail_reason = REASON_DEADLINE if job.timed_out else "Failed"
        self.failure_notes.append(f"job {job.node.name!r} failed")

    # -- the walk ---------------------------------------------------------------------------
    def run(self) -> Plan:
        f = self.f
        wanted, why = trigger_matches(f.trigger, f.context)
        if not wanted:
            return self.skipped_run(why)
        self.classify()
        if f.cancelled_at is not None:
            return self.cancelled_run(f.cancelled_at)

        run_deadline = _deadline(f.started_at, f.run_timeout_seconds)
        run_timed_out = run_deadline is not None and f.now >= run_deadline
        if run_timed_out:
            self.failed = True
            self.failure_notes.append("the run timed out")
        elif run_deadline is not None:
            self.deadlines.append(run_deadline)

        blocked = False
        previous_end = f.started_at
        waiting: str | None = None
        for stage in self.g.stages:
            if run_timed_out:
                self.stop_stage_jobs(stage.jobs, REASON_RUN_TIMEOUT)
            self.settle_failures(stage.jobs, allow_retry=not run_timed_out)
            if blocked:
                self.stage_status.append(self.unreached_stage(stage))
                continue
            stage_status, end = self.reached_stage(stage, previous_end)
            self.stage_status.append(stage_status)
            if stage_status.status == "Waiting":
                waiting = stage.name
            if end is None:
                blocked = True
            else:
                previous_end = end

        all_stages_done = not blocked
        finally_status: StageStatus | None = None
        if self.g.finally_jobs:
            self.settle_failures(self.g.finally_jobs, allow_retry=True)
            if all_stages_done:
                finally_status, end = self.run_jobs_stage(
                    FINALLY_STAGE, self.g.finally_jobs, previous_end, finally_=True
                )
                if end is None:
                    all_stages_done = False
                else:
                    previous_end = end
            else:
                finally_status = self.stage_of_pending(FINALLY_STAGE, self.g.finally_jobs)

        stages = list(self.stage_status)
        if finally_status is not None:
            stages.append(finally_status)
        finally_failed = any(self.jobs[n].fail_reason is not None for n in self.g.finally_jobs)
        if all_stages_done:
            phase: RunPhase = "Failed" if (self.failed or finally_failed) else "Succeeded"
            completed: datetime | None = previous_end
            if run_timed_out and run_deadline is not None:
                completed = max(previous_end, run_deadline)
        else:
            phase = "WaitingApproval" if waiting else "Running"
            completed = None
        return self.finish(phase, stages, completed, waiting)

    def stop_stage_jobs(self, names: tuple[str, ...], reason: str) -> None:
        for name in names:
            job = self.jobs[name]
            if job.kind == "active" and job.obs is not None:
                self.actions.append(StopJob(name, job.obs.attempt, reason))
                job.kind = "failed"
                job.completed_at = _deadline(self.f.started_at, self.f.run_timeout_seconds)
                job.fail_reason = reason

    def reached_stage(
        self, stage: StageNode, previous_end: datetime
    ) -> tuple[StageStatus, datetime | None]:
        """Status of a stage whose predecessor has finished; its end time, or None if not done."""
        f = self.f
        if stage.condition is not None and not evaluate_condition(stage.condition, f.context):
            return self.skip_stage(stage, previous_end, REASON_CONDITION_FALSE), previous_end
        if self.failed and not self.any_started(stage.jobs):
            return self.skip_stage(stage, None, REASON_UPSTREAM_FAILED), previous_end

        approval: Approval | None = None
        started = previous_end
        if stage.gate is not None:
            decision = f.decisions.get(stage.name)
            gate_deadline = _deadline(
                previous_end,
                None if stage.gate.timeout is None else parse_duration(stage.gate.timeout),
            )
            if decision is not None and decision.decision == "Approved":
                approval = Approval(
                    decision="Approved", by=decision.by, at=decision.at, message=decision.message
                )
                started = max(previous_end, decision.at) if decision.at else previous_end
            elif decision is not None or (gate_deadline is not None and f.now >= gate_deadline):
                if decision is not None:
                    approval = Approval(
                        decision="Rejected",
                        by=decision.by,
                        at=decision.at,
                        message=decision.message,
                    )
                    reason, ended = REASON_GATE_REJECTED, decision.at or previous_end
                    self.failure_notes.append(f"stage {stage.name!r} was rejected")
                else:
                    assert gate_deadline is not None
                    approval = Approval(decision="TimedOut", at=gate_deadline)
                    reason, ended = REASON_GATE_TIMED_OUT, gate_deadline
                    self.failure_notes.append(f"the gate of stage {stage.name!r} timed out")
                self.failed = True
                jobs = [self.skipped_job(n, reason) for n in stage.jobs]
                status = StageStatus(
                    name=stage.name,
                    status="Failed",
                    started_at=previous_end,
                    completed_at=ended,
                    approval=approval,
                    jobs=jobs,
                )
                return status, max(ended, previous_end)
            else:
                if gate_deadline is not None:
                    self.deadlines.append(gate_deadline)
                jobs = [self.pending_job(n) for n in stage.jobs]
                status = StageStatus(
                    name=stage.name, status="Waiting", started_at=previous_end, jobs=jobs
                )
                return status, None

        status, end = self.run_jobs_stage(stage.name, stage.jobs, started, finally_=False)
        status.approval = approval
        return status, end

    def run_jobs_stage(
        self, name: str, names: tuple[str, ...], started: datetime, *, finally_: bool
    ) -> tuple[StageStatus, datetime | None]:
        """Start what is ready among `names`; the stage's status and end time (None if going)."""
        for job_name in self.g.start_order(names):
            job = self.jobs[job_name]
            if job.kind == "retry":
                assert job.obs is not None
                self.start(job, job.obs.attempt + 1)
            elif job.kind == "not_started":
                blocked_by = self.blocking_dependency(job)
                if blocked_by == "failed" or (self.failed and not finally_):
                    job.kind = "skipped"
                    job.skip_reason = REASON_UPSTREAM_FAILED
                elif blocked_by is None:
                    self.start(job, 0)
        statuses = [self.job_status(n) for n in names]
        kinds = [self.jobs[n].kind for n in names]
        done = all(k in ("succeeded", "allowed_failure", "failed", "skipped") for k in kinds)
        ends = [self.jobs[n].completed_at for n in names]
        end = max([e for e in ends if e is not None] + [started]) if done else None
        state: StageState
        if not done:
            state = "Running"
        elif any(self.jobs[n].fail_reason is not None for n in names):
            state = "Failed"
        elif all(k == "skipped" for k in kinds):
            state = "Skipped"
        else:
            state = "Succeeded"
        status = StageStatus(
            name=name, status=state, started_at=started, completed_at=end, jobs=statuses
        )
        return status, end

    def blocking_dependency(self, job: _Job) -> Literal["failed", "waiting"] | None:
        """None when every dependency is done well enough for `job` to start."""
        waiting = False
        for dep in job.node.depends_on:
            kind = self.jobs[dep].kind
            if kind in ("succeeded", "allowed_failure"):
                continue
            if kind == "skipped" and self.jobs[dep].skip_reason == REASON_CONDITION_FALSE:
                continue
            if kind in ("failed", "skipped"):
                return "failed"
            waiting = True
        return "waiting" if waiting else None

    def start(self, job: _Job, attempt: int) -> None:
        deps = job.node.depends_on
        artifacts = tuple(
            d
            for d in deps
            if self.g.jobs[d].artifacts is not None and self.jobs[d].kind == "succeeded"
        )
        self.actions.append(StartJob(job.node, attempt, artifacts))
        job.kind = "active"

    def any_started(self, names: tuple[str, ...]) -> bool:
        return any(self.jobs[n].obs is not None for n in names)

    # -- status builders ----------------------------------------------------------------------
    def job_status(self, name: str) -> JobStatus:
        job = self.jobs[name]
        # The clock only matters for a job still going (its duration so far).
        now = self.f.now if job.completed_at is None and job.obs is not None else None
        return _job_status(
            name, job.kind, job.obs, job.skip_reason, job.fail_reason, job.completed_at,
            job.timed_out, now,
        )  # fmt: skip

    def pending_job(self, name: str) -> JobStatus:
        return _job_status(name, "not_started", None, None, None, None, False, None)

    def skipped_job(self, name: str, reason: str) -> JobStatus:
        job = self.jobs[name]
        job.kind, job.skip_reason = "skipped", reason
        return _job_status(name, "skipped", None, reason, None, None, False, None)

    def skip_stage(self, stage: StageNode, at: datetime | None, reason: str) -> StageStatus:
        jobs = [self.skipped_job(n, reason) for n in stage.jobs]
        return StageStatus(
            name=stage.name, status="Skipped", started_at=None, completed_at=at, jobs=jobs
        )

    def unreached_stage(self, stage: StageNode) -> StageStatus:
        if self.failed:
            return self.skip_stage(stage, None, REASON_UPSTREAM_FAILED)
        return self.stage_of_pending(stage.name, stage.jobs)

    def stage_of_pending(self, name: str, names: tuple[str, ...]) -> StageStatus:
        return StageStatus(name=name, status="Pending", jobs=[self.pending_job(n) for n in names])

    def skipped_run(self, why: str) -> Plan:
        stages = [
            self.skip_stage(s, self.f.started_at, REASON_TRIGGER_MISMATCH) for s in self.g.stages
        ]
        if self.g.finally_jobs:
            stages.append(
                StageStatus(
                    name=FINALLY_STAGE,
                    status="Skipped",
                    completed_at=self.f.started_at,
                    jobs=[
                        self.skipped_job(n, REASON_TRIGGER_MISMATCH) for n in self.g.finally_jobs
                    ],
                )
            )
        self.failure_notes = [why]
        return self.finish("Skipped", stages, self.f.started_at, None)

    def cancelled_run(self, at: datetime) -> Plan:
        stages: list[StageStatus] = []
        sections: list[tuple[str, tuple[str, ...]]] = [(s.name, s.jobs) for s in self.g.stages]
        if self.g.finally_jobs:
            sections.append((FINALLY_STAGE, self.g.finally_jobs))
        for name, names in sections:
            jobs: list[JobStatus] = []
            for job_name in names:
                job = self.jobs[job_name]
                if job.kind == "active" and job.obs is not None:
                    self.actions.append(StopJob(job_name, job.obs.attempt, REASON_CANCELLED))
                    job.kind, job.fail_reason, job.completed_at = "failed", REASON_CANCELLED, at
                if job.kind == "not_started":
                    jobs.append(self.skipped_job(job_name, REASON_CANCELLED))
                else:
                    if job.kind == "failed" and job.fail_reason is None:
                        job.fail_reason = "Failed"
                    jobs.append(self.job_status(job_name))
            ran = [j for j in jobs if j.status != "Skipped"]
            state: StageState = "Skipped"
            if ran:
                state = "Failed" if any(j.status == "Failed" for j in ran) else "Succeeded"
            starts = [j.started_at for j in ran if j.started_at is not None]
            stages.append(
                StageStatus(
                    name=name,
                    status=state,
                    started_at=min(starts) if starts else None,
                    completed_at=at if ran else None,
                    jobs=jobs,
                )
            )
        self.failure_notes = ["the run was cancelled"]
        return self.finish("Cancelled", stages, at, None)

    def finish(
        self,
        phase: RunPhase,
        stages: list[StageStatus],
        completed: datetime | None,
        waiting: str | None,
    ) -> Plan:
        f = self.f
        end = completed if completed is not None else f.now
        current = waiting or next((s.name for s in stages if s.status == "Running"), None)
        status = RunStatus(
            phase=phase,
            current_stage=current if completed is None else None,
            started_at=f.started_at,
            completed_at=completed,
            duration_seconds=round(max(0.0, (end - f.started_at).total_seconds()), 3),
            conditions=[self.condition(phase, stages, completed, waiting)],
            stages=stages,
        )
        future = [d for d in self.deadlines if d > f.now]
        next_check = min(future) if future and completed is None else None
        return Plan(actions=tuple(self.actions), status=status, next_check_at=next_check)

    def condition(
        self,
        phase: RunPhase,
        stages: list[StageStatus],
        completed: datetime | None,
        waiting: str | None,
    ) -> Condition:
        notes = "; ".join(self.failure_notes)
        if phase == "Succeeded":
            return Condition(
                type="Succeeded",
                status="True",
                reason="Succeeded",
                message="all jobs succeeded",
                last_transition_time=completed,
            )
        if phase in ("Failed", "Cancelled"):
            return Condition(
                type="Succeeded",
                status="False",
                reason=phase,
                message=notes,
                last_transition_time=completed,
            )
        if phase == "Skipped":
            return Condition(
                type="Succeeded",
                status="True",
                reason="Skipped",
                message=notes,
                last_transition_time=completed,
            )
        if waiting:
            message = f"stage {waiting!r} is waiting for approval"
        else:
            running = sum(1 for s in stages for j in s.jobs if j.status == "Running")
            message = f"{running} job(s) running"
            if notes:
                message += f"; {notes}"
        return Condition(
            type="Succeeded",
            status="Unknown",
            reason=phase,
            message=message,
            last_transition_time=self.f.started_at,
        )


# Statuses are memoised on everything they are made from: a big run re-plans on every event,
# and most of its jobs (pending or finished) look the same each time. JobStatus is frozen, so
# sharing one between plans is safe, and `plan` stays a pure function.
@lru_cache(maxsize=1 << 16)
def _job_status(
    name: str,
    kind: _Kind,
    obs: JobObservation | None,
    skip_reason: str | None,
    fail_reason: str | None,
    completed_at: datetime | None,
    timed_out: bool,
    now: datetime | None,
) -> JobStatus:
    if kind == "skipped":
        return JobStatus(name=name, status="Skipped", reason=skip_reason)
    if obs is None:
        return JobStatus(name=name, status="Pending")
    state: JobState
    reason = obs.reason
    attempt = obs.attempt
    completed = completed_at
    running_for: float | None = None
    if kind == "active" and obs.state in ("Failed", "Succeeded"):
        # A retry that was just started is not observed yet: show it as pending.
        state, reason, attempt, completed = "Pending", REASON_RETRYING, obs.attempt + 1, None
    else:
        if kind == "active":
            state = "Running" if obs.state == "Running" else "Pending"
        elif kind == "succeeded":
            state = "Succeeded"
        elif kind == "allowed_failure":
            state, reason = "Failed", REASON_ALLOWED_FAILURE
        else:
            state = "Failed"
            reason = fail_reason if fail_reason not in (None, "Failed") else reason
            if timed_out:
                reason = REASON_DEADLINE
        end = completed if completed is not None else now
        if obs.started_at is not None and end is not None:
            running_for = max(0.0, (end - obs.started_at).total_seconds())
    return JobStatus(
        name=name,
        status=state,
        exit_code=obs.exit_code if state in ("Succeeded", "Failed") else None,
        duration_seconds=None if running_for is None else round(running_for, 3),
        cached_hit=obs.cached_hit,
        started_at=None if state == "Pending" else obs.started_at,
        completed_at=completed if state in ("Succeeded", "Failed") else None,
        job_name=obs.job_name,
        attempt=attempt,
        reason=reason,
        message=obs.message if state in ("Succeeded", "Failed", "Running") else None,
    )


def plan(facts: Facts) -> Plan:
    """What to do next for a run, and its status, as a pure function of `facts`."""
    return _Planner(facts).run()


def _deadline(start: datetime | None, seconds: float | None) -> datetime | None:
    if start is None or seconds is None:
        return None
    return start + timedelta(seconds=seconds)
