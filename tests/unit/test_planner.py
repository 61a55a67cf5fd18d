"""Planner rules from PRODUCT.md, each on a small pipeline driven to its end."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conveyor.core.graph import require_graph
from conveyor.core.models import RunContext
from conveyor.core.planner import Facts, GateDecision, JobObservation, StopJob, plan
from tests.unit.sim import T0, Outcome, simulate, spec_of

SEED_LIKE = """
stages:
  - name: check
    jobs:
      - {name: install, commands: [i]}
      - {name: lint, dependsOn: [install], commands: [l]}
      - {name: unit, dependsOn: [install], commands: [u]}
      - {name: e2e, dependsOn: [install], matrix: {browser: [chromium, firefox]}, commands: [e]}
  - name: integration
    condition: "branch == 'main'"
    jobs: [{name: integration, commands: [t]}]
  - name: deploy-staging
    gate: {approvers: [anna], timeout: 1h}
    jobs: [{name: deploy, dependsOn: [unit], commands: [d]}]
finally:
  - {name: report, commands: [r]}
"""
APPROVED = {"deploy-staging": GateDecision("Approved", by="anna", at=T0)}


def test_job_starts_when_its_own_dependencies_finish_not_its_level() -> None:
    spec = spec_of(
        """
stages:
  - name: s
    jobs:
      - {name: a, commands: [x]}
      - {name: slow, commands: [x]}
      - {name: b, dependsOn: [a], commands: [x]}
      - {name: c, dependsOn: [b], commands: [x]}
"""
    )
    sim = simulate(spec, outcomes={"slow": Outcome(10), "a": Outcome(1), "b": Outcome(1)})
    assert sim.start_time("b") == 1
    assert sim.start_time("c") == 2  # long before `slow` ends at 10
    assert sim.phase == "Succeeded"


def test_seed_pipeline_on_main_runs_everything_in_order() -> None:
    sim = simulate(spec_of(SEED_LIKE), decisions=APPROVED)
    assert sim.phase == "Succeeded"
    assert sim.start_time("lint") == sim.start_time("unit") == 1
    assert sim.start_time("e2e[browser=firefox]") == 1
    assert sim.start_time("integration") == 2
    assert sim.start_time("deploy") == 3
    assert sim.start_time("report") == 4
    stage = next(s for s in sim.final.status.stages if s.name == "deploy-staging")
    assert stage.approval is not None and stage.approval.by == "anna"


def test_false_condition_skips_stage_and_dependents_still_run() -> None:
    spec = spec_of(
        """
stages:
  - name: a
    condition: "branch:main"
    jobs: [{name: only-main, commands: [x]}]
  - name: b
    jobs: [{name: after, dependsOn: [only-main], commands: [x]}]
"""
    )
    sim = simulate(spec, context=RunContext(branch="feature/x"))
    assert sim.stage("a") == "Skipped"
    assert sim.reason_of("only-main") == "ConditionFalse"
    assert sim.status_of("after") == "Succeeded"
    assert sim.phase == "Succeeded"


@pytest.mark.parametrize(
    ("failing", "skipped", "ran"),
    [
        ("install", {"lint", "unit", "e2e[browser=chromium]", "integration", "deploy"}, {"report"}),
        ("lint", {"integration", "deploy"}, {"unit", "report"}),
    ],
)
def test_failure_stops_new_starts_and_finally_runs(
    failing: str, skipped: set[str], ran: set[str]
) -> None:
    sim = simulate(
        spec_of(SEED_LIKE), outcomes={failing: Outcome(exit_codes=[1])}, decisions=APPROVED
    )
    assert sim.phase == "Failed"
    assert sim.status_of(failing) == "Failed"
    for job in skipped:
        assert sim.status_of(job) == "Skipped", job
        assert sim.reason_of(job) == "UpstreamFailed", job
    for job in ran:
        assert sim.status_of(job) == "Succeeded", job
    assert sim.final.status.conditions[0].status == "False"
    assert failing in sim.final.status.conditions[0].message


def test_running_jobs_finish_after_a_sibling_fails() -> None:
    spec = spec_of(
        """
stages:
  - name: s
    jobs:
      - {name: quick-fail, commands: [x]}
      - {name: long, commands: [x]}
      - {name: after-long, dependsOn: [long], commands: [x]}
"""
    )
    sim = simulate(spec, outcomes={"quick-fail": Outcome(1, [2]), "long": Outcome(5)})
    assert sim.status_of("long") == "Succeeded"
    assert sim.status_of("after-long") == "Skipped"
    assert sim.phase == "Failed"
    assert sim.final.status.completed_at == T0 + timedelta(seconds=5)


def test_allow_failure_does_not_fail_the_run_or_block_dependents() -> None:
    spec = spec_of(
        """
stages:
  - name: s
    jobs:
      - {name: flaky, allowFailure: true, commands: [x]}
      - {name: next, dependsOn: [flaky], commands: [x]}
"""
    )
    sim = simulate(spec, outcomes={"flaky": Outcome(exit_codes=[1])})
    assert sim.status_of("flaky") == "Failed"
    assert sim.reason_of("flaky") == "AllowedFailure"
    assert sim.status_of("next") == "Succeeded"
    assert sim.phase == "Succeeded"


@pytest.mark.parametrize(
    ("retries", "codes", "phase", "attempts"),
    [
        (1, [1, 0], "Succeeded", 2),
        (1, [1, 1], "Failed", 2),
        (0, [1, 0], "Failed", 1),
        (3, [1], "Failed", 4),
    ],
)
def test_retries_start_new_attempts(
    retries: int, codes: list[int], phase: str, attempts: int
) -> None:
    spec = spec_of(
        {"stages": [{"name": "s", "jobs": [{"name": "j", "retries": retries, "commands": ["x"]}]}]}
    )
    sim = simulate(spec, outcomes={"j": Outcome(exit_codes=codes)})
    assert sim.phase == phase
    assert [a for _, n, a in sim.starts if n == "j"] == list(range(attempts))


def test_gate_waits_without_decision_and_wakes_for_its_timeout() -> None:
    graph = require_graph(spec_of(SEED_LIKE))
    observed = {
        name: JobObservation(0, "Succeeded", 0, T0, T0 + timedelta(seconds=1))
        for name in graph.jobs
        if graph.jobs[name].stage in ("check", "integration")
    }
    facts = Facts(graph, RunContext(branch="main"), T0, T0 + timedelta(seconds=5), observed)
    result = plan(facts)
    assert result.status.phase == "WaitingApproval"
    assert result.waiting_stage == "deploy-staging"
    assert result.starts == []
    assert result.next_check_at == T0 + timedelta(seconds=1, hours=1)


@pytest.mark.parametrize(
    ("decisions", "decision"),
    [
        (
            {"deploy-staging": GateDecision("Rejected", by="bob", at=T0, message="not today")},
            "Rejected",
        ),
        ({}, "TimedOut"),
    ],
)
def test_rejected_or_timed_out_gate_fails_the_run_and_runs_finally(
    decisions: dict[str, GateDecision], decision: str
) -> None:
    sim = simulate(spec_of(SEED_LIKE), decisions=decisions)
    stage = next(s for s in sim.final.status.stages if s.name == "deploy-staging")
    assert stage.status == "Failed"
    assert stage.approval is not None and stage.approval.decision == decision
    assert sim.status_of("deploy") == "Skipped"
    assert sim.status_of("report") == "Succeeded"
    assert sim.phase == "Failed"


def test_job_timeout_fails_the_job_and_stops_it() -> None:
    spec = spec_of(
        {"stages": [{"name": "s", "jobs": [{"name": "hang", "timeout": "30s", "commands": ["x"]}]}]}
    )
    sim = simulate(spec, outcomes={"hang": Outcome(seconds=1000)})
    assert sim.status_of("hang") == "Failed"
    assert sim.reason_of("hang") == "DeadlineExceeded"
    assert sim.final.status.completed_at == T0 + timedelta(seconds=30)


def test_run_timeout_stops_running_jobs_and_still_runs_finally() -> None:
    spec = spec_of(
        """
stages:
  - name: s
    jobs: [{name: long, commands: [x]}, {name: after, dependsOn: [long], commands: [x]}]
finally: [{name: cleanup, commands: [x]}]
"""
    )
    sim = simulate(spec, outcomes={"long": Outcome(500)}, run_timeout=60)
    assert sim.status_of("long") == "Failed"
    assert sim.reason_of("long") == "RunTimeout"
    assert sim.status_of("after") == "Skipped"
    assert sim.status_of("cleanup") == "Succeeded"
    assert sim.phase == "Failed"


def test_cancel_stops_everything_and_ends_cancelled() -> None:
    graph = require_graph(spec_of(SEED_LIKE))
    observed = {"install": JobObservation(0, "Running", started_at=T0)}
    at = T0 + timedelta(seconds=3)
    result = plan(Facts(graph, RunContext(branch="main"), T0, at, observed, cancelled_at=at))
    assert result.status.phase == "Cancelled"
    assert result.stops == [StopJob("install", 0, "Cancelled")]
    assert result.starts == []
    assert result.status.completed_at == at
    jobs = {j.name: j for s in result.status.stages for j in s.jobs}
    assert jobs["install"].reason == "Cancelled"
    assert jobs["report"].status == "Skipped"


@pytest.mark.parametrize(
    ("context", "phase"),
    [
        (RunContext(branch="main", event="push"), "Succeeded"),
        (RunContext(branch="release/1.2", event="push"), "Succeeded"),
        (RunContext(branch="feature/x", event="push"), "Skipped"),
        (RunContext(branch="main", event="tag"), "Skipped"),
    ],
)
def test_trigger_filters_runs(context: RunContext, phase: str) -> None:
    spec = spec_of(
        """
trigger: {branches: [main, "release/*"], events: [push]}
stages: [{name: s, jobs: [{name: j, commands: [x]}]}]
"""
    )
    sim = simulate(spec, context=context)
    assert sim.phase == phase
    if phase == "Skipped":
        assert sim.starts == []
        assert sim.reason_of("j") == "TriggerMismatch"


def test_stages_wait_for_the_previous_stage() -> None:
    spec = spec_of(
        """
stages:
  - {name: one, jobs: [{name: a, commands: [x]}, {name: b, commands: [x]}]}
  - {name: two, jobs: [{name: c, commands: [x]}]}
"""
    )
    sim = simulate(spec, outcomes={"a": Outcome(1), "b": Outcome(4)})
    assert sim.start_time("c") == 4


def test_cached_hit_is_reported() -> None:
    spec = spec_of({"stages": [{"name": "s", "jobs": [{"name": "install", "commands": ["x"]}]}]})
    sim = simulate(spec, outcomes={"install": Outcome(cached_hit=True)})
    job = sim.final.status.stages[0].jobs[0]
    assert job.cached_hit is True


def test_artifacts_come_from_direct_dependencies_that_publish_them() -> None:
    spec = spec_of(
        """
stages:
  - name: s
    jobs:
      - {name: build, commands: [x], artifacts: {paths: [dist/]}}
      - {name: plain, commands: [x]}
      - {name: deploy, dependsOn: [build, plain], commands: [x]}
"""
    )
    graph = require_graph(spec)
    done = {n: JobObservation(0, "Succeeded", 0, T0, T0) for n in ("build", "plain")}
    result = plan(Facts(graph, RunContext(), T0, T0, done))
    (start,) = result.starts
    assert start.job.name == "deploy"
    assert start.artifacts_from == ("build",)


def test_planner_is_deterministic_and_stateless() -> None:
    graph = require_graph(spec_of(SEED_LIKE))
    observed = {"install": JobObservation(0, "Succeeded", 0, T0, T0 + timedelta(seconds=2))}
    facts = Facts(graph, RunContext(branch="main"), T0, T0 + timedelta(seconds=3), observed)
    assert plan(facts) == plan(facts)


def test_status_is_small_for_a_500_job_run() -> None:
    spec = spec_of(
        {
            "stages": [
                {
                    "name": "s",
                    "jobs": [
                        {
                            "name": "m",
                            "commands": ["x"],
                            "matrix": {"a": list(range(25)), "b": list(range(20))},
                        }
                    ],
                }
            ]
        }
    )
    sim = simulate(spec)
    size = len(sim.final.status.model_dump_json(by_alias=True))
    assert len(sim.graph.jobs) == 500
    assert size < 300_000  # etcd's object limit is 1.5 MiB


def test_a_chain_of_thousands_of_jobs_plans_without_recursion_limits() -> None:
    count = 3000
    jobs = [
        {"name": f"j{i}", "commands": ["x"], "dependsOn": [f"j{i + 1}"] if i < count - 1 else []}
        for i in range(count)
    ]
    graph = require_graph(spec_of({"stages": [{"name": "s", "jobs": jobs}]}))
    result = plan(Facts(graph, RunContext(), T0, T0))
    assert [a.job.name for a in result.starts] == [f"j{count - 1}"]


def test_no_retry_starts_once_another_job_has_failed_for_good() -> None:
    spec = spec_of(
        """
stages:
  - name: s
    jobs:
      - {name: broken, commands: [x]}
      - {name: flaky, retries: 2, commands: [x]}
"""
    )
    sim = simulate(spec, outcomes={"broken": Outcome(1, [1]), "flaky": Outcome(1, [1, 0])})
    assert [a for _, n, a in sim.starts if n == "flaky"] == [0]
    assert sim.status_of("flaky") == "Failed"
    assert sim.phase == "Failed"


def test_a_job_still_running_past_its_timeout_is_stopped_at_once() -> None:
    spec = spec_of(
        {"stages": [{"name": "s", "jobs": [{"name": "hang", "timeout": 30, "commands": ["x"]}]}]}
    )
    graph = require_graph(spec)
    observed = {"hang": JobObservation(0, "Running", started_at=T0)}
    before = plan(Facts(graph, RunContext(), T0, T0 + timedelta(seconds=29), observed))
    assert before.stops == [] and before.next_check_at == T0 + timedelta(seconds=30)
    after = plan(Facts(graph, RunContext(), T0, T0 + timedelta(seconds=31), observed))
    assert after.stops == [StopJob("hang", 0, "DeadlineExceeded")]
    job = after.status.stages[0].jobs[0]
    assert (job.status, job.reason) == ("Failed", "DeadlineExceeded")
    assert after.status.phase == "Failed"
