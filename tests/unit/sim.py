"""A discrete-event driver of the planner for tests: jobs take given times and give given results.

It plays the executor's part with a simulated clock, so planner rules can be checked on whole
runs without processes or a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from conveyor.core.graph import Graph, require_graph
from conveyor.core.models import PipelineSpec, RunContext
from conveyor.core.planner import Facts, GateDecision, JobObservation, Plan, StartJob, plan

T0 = datetime(2026, 12, 4, 10, 0, 0, tzinfo=UTC)


def spec_of(text_or_data: str | dict[str, Any]) -> PipelineSpec:
    data = yaml.safe_load(text_or_data) if isinstance(text_or_data, str) else text_or_data
    return PipelineSpec.model_validate(data)


@dataclass
class Outcome:
    seconds: float = 1.0
    exit_codes: list[int] = field(default_factory=lambda: [0])  # per attempt; last repeats
    cached_hit: bool = False


@dataclass
class SimResult:
    final: Plan
    starts: list[tuple[float, str, int]]  # (time offset, job, attempt)
    plans: int
    graph: Graph

    def status_of(self, job: str) -> str:
        for stage in self.final.status.stages:
            for item in stage.jobs:
                if item.name == job:
                    return item.status
        raise KeyError(job)

    def reason_of(self, job: str) -> str | None:
        for stage in self.final.status.stages:
            for item in stage.jobs:
                if item.name == job:
                    return item.reason
        raise KeyError(job)

    def stage(self, name: str) -> str:
        return next(s.status for s in self.final.status.stages if s.name == name)

    def start_time(self, job: str, attempt: int = 0) -> float:
        return next(t for t, n, a in self.starts if n == job and a == attempt)

    @property
    def phase(self) -> str:
        return self.final.status.phase


def simulate(
    spec: PipelineSpec,
    *,
    context: RunContext | None = None,
    outcomes: dict[str, Outcome] | None = None,
    decisions: dict[str, GateDecision] | None = None,
    run_timeout: float | None = None,
    cancel_at: float | None = None,
    until: float = 100_000.0,
) -> SimResult:
    """Run the planner to the end (or until it waits with nothing to wait for)."""
    graph = require_graph(spec)
    context = context or RunContext(branch="main", event="push", commit="abc1234")
    outcomes = outcomes or {}
    observed: dict[str, JobObservation] = {}
    running: dict[str, tuple[float, int]] = {}  # job -> (end time, attempt)
    starts: list[tuple[float, str, int]] = []
    now = 0.0
    plans = 0
    while True:
        cancelled = (
            T0 + timedelta(seconds=cancel_at)
            if cancel_at is not None and now >= cancel_at
            else None
        )
        facts = Facts(
            graph=graph,
            context=context,
            started_at=T0,
            now=T0 + timedelta(seconds=now),
            observed=dict(observed),
            decisions=decisions or {},
            trigger=spec.trigger,
            run_timeout_seconds=run_timeout,
            cancelled_at=cancelled,
        )
        result = plan(facts)
        plans += 1
        new_work = False
        for action in result.actions:
            if isinstance(action, StartJob):
                name = action.job.name
                current = observed.get(name)
                if current is not None and current.attempt >= action.attempt:
                    continue
                seconds = outcomes.get(name, outcomes.get(action.job.base_name, Outcome())).seconds
                running[name] = (now + seconds, action.attempt)
                observed[name] = JobObservation(
                    attempt=action.attempt,
                    state="Running",
                    started_at=T0 + timedelta(seconds=now),
                    job_name=f"sim-{name}-{action.attempt}",
                )
                starts.append((now, name, action.attempt))
                new_work = True
            elif action.name in running:
                del running[action.name]
                prev = observed[action.name]
                observed[action.name] = JobObservation(
                    attempt=prev.attempt,
                    state="Failed",
                    exit_code=137,
                    started_at=prev.started_at,
                    completed_at=T0 + timedelta(seconds=now),
                    reason=action.reason,
                )
                new_work = True
        if result.finished and not running:
            return SimResult(result, starts, plans, graph)
        if new_work:
            continue
        # Advance the clock to the next job end, deadline or cancel.
        times = [end for end, _ in running.values()]
        if result.next_check_at is not None:
            times.append((result.next_check_at - T0).total_seconds())
        if cancel_at is not None and cancel_at > now:
            times.append(cancel_at)
        if not times or now >= until:
            return SimResult(result, starts, plans, graph)
        now = max(now, min(times))
        for name, (end, attempt) in list(running.items()):
            if end <= now:
                del running[name]
                outcome = outcomes.get(name, outcomes.get(graph.jobs[name].base_name, Outcome()))
                codes = outcome.exit_codes
                code = codes[min(attempt, len(codes) - 1)]
                prev = observed[name]
                observed[name] = JobObservation(
                    attempt=attempt,
                    state="Succeeded" if code == 0 else "Failed",
                    exit_code=code,
                    started_at=prev.started_at,
                    completed_at=T0 + timedelta(seconds=end),
                    cached_hit=outcome.cached_hit,
                    job_name=prev.job_name,
                )
