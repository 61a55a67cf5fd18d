"""The local executor: drives the planner event by event and carries out its actions.

The loop is: observe, `plan(facts)`, start and stop processes, wait for the next event (a job
attempt ending, a cancel, or the planner's `next_check_at`), and again. Every job that ends
triggers a new plan at once, so a job starts the moment its own dependencies are done. The
planner decides *what* may run; this module only decides *how many at once* (`parallel`):
jobs the planner started beyond that cap wait in a queue and are reported `Pending`.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

from conveyor.core.graph import Graph
from conveyor.core.models import RunContext, RunStatus, Trigger
from conveyor.core.naming import child_job_name
from conveyor.core.planner import (
    Facts,
    GateDecision,
    JobObservation,
    Plan,
    StartJob,
    StopJob,
    plan,
)
from conveyor.local.cache import LocalCache
from conveyor.local.job import JobAttempt, JobOutcome, JobSetup, RunPaths
from conveyor.local.process import DEFAULT_GRACE_SECONDS

Decision = Literal["Approved", "Rejected"]
# Asked when a gate is reached without a decision: Approved, Rejected, or None (no answer).
GatePrompt = Callable[[str], Decision | None]


class Display(Protocol):
    def note(self, text: str) -> None: ...
    def job_started(self, name: str, attempt: int, log: Path) -> None: ...
    def job_output(self, name: str, line: str) -> None: ...
    def job_finished(self, outcome: JobOutcome) -> None: ...
    def update(self, status: RunStatus) -> None: ...


@dataclass(frozen=True)
class RunOptions:
    run_id: str
    graph: Graph
    context: RunContext
    source: Path
    run_dir: Path
    cache_dir: Path
    parallel: int
    trigger: Trigger | None = None
    run_timeout_seconds: float | None = None
    decisions: Mapping[str, Decision] = field(default_factory=dict)
    user: str | None = None
    grace_seconds: float = DEFAULT_GRACE_SECONDS


@dataclass(frozen=True)
class RunResult:
    status: RunStatus
    waiting_stage: str | None  # set when the run stopped at a gate nobody decided
    logs: Mapping[str, Path]  # job name -> log of its latest attempt
    plans: int  # how many times the planner was called (for benchmarks)


def utcnow() -> datetime:
    return datetime.now(UTC)


class LocalRun:
    """One run of a pipeline on this machine. `cancel()` is safe from a signal handler."""

    def __init__(
        self, options: RunOptions, display: Display, ask_gate: GatePrompt | None = None
    ) -> None:
        self.o = options
        self.display = display
        self.ask_gate = ask_gate
        self.paths = RunPaths(options.run_dir)
        self.setup = JobSetup(
            run_id=options.run_id,
            paths=self.paths,
            source=options.source,
            exclude=(options.run_dir, options.cache_dir),
            context=options.context,
            cache=LocalCache(options.cache_dir),
            grace_seconds=options.grace_seconds,
        )
        self.events: queue.SimpleQueue[JobOutcome | None] = queue.SimpleQueue()
        self.observed: dict[str, JobObservation] = {}
        self.decisions: dict[str, GateDecision] = {}
        self.started: set[tuple[str, int]] = set()
        self.queued: deque[StartJob] = deque()
        self.running: dict[str, JobAttempt] = {}
        self.logs: dict[str, Path] = {}
        self.started_at = utcnow()
        self.cancelled_at: datetime | None = None
        self.plans = 0

    def cancel(self) -> None:
        """Stop the run: running jobs are stopped and the run ends `Cancelled`."""
        if self.cancelled_at is None:
            self.cancelled_at = utcnow()
        self.events.put(None)  # wake the loop

    def execute(self) -> RunResult:
        try:
            return self._loop()
        finally:
            # Whatever happened (even a bug here), leave no process behind.
            for attempt in list(self.running.values()):
                attempt.stop("Cancelled")

    def _loop(self) -> RunResult:
        while True:
            now = utcnow()
            current = self.plan(now)
            for action in current.actions:
                if isinstance(action, StartJob):
                    self.accept(action)
                else:
                    self.stop(action, now)
            self.dispatch()
            self.display.update(current.status)

            if current.finished and not self.running:
                return RunResult(current.status, None, dict(self.logs), self.plans)
            stage = current.waiting_stage
            if stage is not None and not self.running and not self.queued:
                if self.decide(stage):
                    continue
                return RunResult(current.status, stage, dict(self.logs), self.plans)

            if not self.running and not self.queued and current.next_check_at is None:
                # Nothing can change any more: waiting would hang. A planner bug, not the user's.
                raise RuntimeError(f"the run is {current.status.phase} but nothing is running")
            timeout = None
            if current.next_check_at is not None:
                timeout = max(0.0, (current.next_check_at - utcnow()).total_seconds())
            self.wait(timeout)

    def plan(self, now: datetime) -> Plan:
        self.plans += 1
        return plan(
            Facts(
                graph=self.o.graph,
                context=self.o.context,
                started_at=self.started_at,
                now=now,
                observed=self.observed,
                decisions=self.decisions,
                trigger=self.o.trigger,
                run_timeout_seconds=self.o.run_timeout_seconds,
                cancelled_at=self.cancelled_at,
            )
        )

    def decide(self, stage: str) -> bool:
        """Record a decision for a waiting gate; False when nobody can give one."""
        decision = self.o.decisions.get(stage)
        if decision is None and self.ask_gate is not None and self.cancelled_at is None:
            decision = self.ask_gate(stage)
        if self.cancelled_at is not None:
            return True  # cancelled while asking: plan again, which ends the run
        if decision is None:
            return False
        # Decided now, when the gate is reached: the status shows when the stage was let through.
        self.decisions[stage] = GateDecision(decision, by=self.o.user, at=utcnow())
        verb = "approved" if decision == "Approved" else "rejected"
        self.display.note(f"==> stage {stage} {verb} by {self.o.user or 'unknown'}")
        return True

    def wait(self, timeout: float | None) -> None:
        """Block for the next event, then take every event already queued (one plan for all)."""
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            if event is not None:
                self.finished(event)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return

    # -- actions ------------------------------------------------------------------------------
    def accept(self, action: StartJob) -> None:
        key = (action.job.name, action.attempt)
        if key in self.started:
            return  # the planner repeats a start until it observes it; starting is idempotent
        self.started.add(key)
        self.queued.append(action)
        self.observed[action.job.name] = JobObservation(
            attempt=action.attempt, state="Pending", job_name=self.k8s_name(action)
        )

    def dispatch(self) -> None:
        while self.queued and len(self.running) < self.o.parallel and self.cancelled_at is None:
            action = self.queued.popleft()
            now = utcnow()
            attempt = JobAttempt(
                self.setup,
                action.job,
                action.attempt,
                action.artifacts_from,
                now,
                self.display.job_output,
            )
            self.running[action.job.name] = attempt
            self.logs[action.job.name] = attempt.log_path
            self.observed[action.job.name] = JobObservation(
                attempt=action.attempt,
                state="Running",
                started_at=now,
                job_name=self.k8s_name(action),
            )
            self.display.job_started(action.job.name, action.attempt, attempt.log_path)
            thread = threading.Thread(
                target=self.work, args=(attempt,), name=f"job-{action.job.name}", daemon=True
            )
            thread.start()

    def work(self, attempt: JobAttempt) -> None:
        try:
            outcome = attempt.run()
        except Exception as err:  # a bug must fail the job, never hang the run
            now = utcnow()
            outcome = JobOutcome(
                attempt.job.name,
                attempt.attempt,
                "Failed",
                None,
                attempt.started_at,
                now,
                "InternalError",
                f"{type(err).__name__}: {err}",
                False,
                attempt.log_path,
            )
        self.events.put(outcome)

    def finished(self, outcome: JobOutcome) -> None:
        running = self.running.get(outcome.name)
        if running is not None and running.attempt == outcome.attempt:
            del self.running[outcome.name]
        self.observed[outcome.name] = JobObservation(
            attempt=outcome.attempt,
            state=outcome.state,
            exit_code=outcome.exit_code,
            started_at=outcome.started_at,
            completed_at=outcome.completed_at,
            reason=outcome.reason,
            message=outcome.message,
            cached_hit=outcome.cached_hit,
            job_name=self.observed.get(outcome.name, JobObservation(0, "Pending")).job_name,
        )
        self.display.job_finished(outcome)

    def stop(self, action: StopJob, now: datetime) -> None:
        running = self.running.get(action.name)
        if running is not None and running.attempt == action.attempt:
            running.stop(action.reason)
            return
        for queued in list(self.queued):
            if queued.job.name == action.name and queued.attempt == action.attempt:
                # Never started: it ends here, as the planner already decided.
                self.queued.remove(queued)
                self.observed[action.name] = JobObservation(
                    attempt=action.attempt,
                    state="Failed",
                    completed_at=now,
                    reason=action.reason,
                    job_name=self.k8s_name(queued),
                )

    def k8s_name(self, action: StartJob) -> str:
        # The name a Kubernetes Job would get, so reports from both executors read alike.
        return child_job_name(self.o.run_id, action.job.name, action.attempt)
