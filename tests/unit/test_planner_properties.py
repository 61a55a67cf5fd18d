"""Properties of the planner over random DAGs, random durations and random failures."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.core.models import PipelineSpec, RunContext
from tests.unit.sim import Outcome, SimResult, simulate


@st.composite
def pipelines(draw: st.DrawFn) -> tuple[PipelineSpec, dict[str, Outcome]]:
    stage_count = draw(st.integers(1, 3))
    names: list[str] = []
    stages: list[dict[str, Any]] = []
    outcomes: dict[str, Outcome] = {}
    for s in range(stage_count):
        jobs: list[dict[str, Any]] = []
        for _ in range(draw(st.integers(1, 5))):
            name = f"j{len(names)}"
            # Edges only point to earlier jobs, so the graph is acyclic.
            deps = draw(st.lists(st.sampled_from(names), max_size=3, unique=True)) if names else []
            job: dict[str, Any] = {"name": name, "commands": ["x"], "dependsOn": deps}
            job["retries"] = draw(st.integers(0, 1))
            job["allowFailure"] = draw(st.booleans()) and draw(st.booleans())
            jobs.append(job)
            names.append(name)
            outcomes[name] = Outcome(
                seconds=draw(st.integers(1, 9)),
                exit_codes=draw(st.lists(st.sampled_from([0, 0, 0, 1]), min_size=1, max_size=2)),
            )
        stage: dict[str, Any] = {"name": f"s{s}", "jobs": jobs}
        if draw(st.booleans()) and draw(st.booleans()):
            stage["condition"] = draw(st.sampled_from(["branch == 'main'", "branch:!main"]))
        stages.append(stage)
    spec: dict[str, Any] = {"stages": stages}
    if draw(st.booleans()):
        spec["finally"] = [{"name": "fin", "commands": ["x"]}]
    return PipelineSpec.model_validate(spec), outcomes


def _final_jobs(sim: SimResult) -> dict[str, Any]:
    return {j.name: j for stage in sim.final.status.stages for j in stage.jobs}


@settings(max_examples=150, deadline=None)
@given(pipelines())
def test_run_properties(case: tuple[PipelineSpec, dict[str, Outcome]]) -> None:
    spec, outcomes = case
    sim = simulate(spec, context=RunContext(branch="main"), outcomes=outcomes)
    jobs = _final_jobs(sim)
    graph = sim.graph

    # Every job ends in exactly one final state, and the run ends.
    assert sim.final.finished
    assert set(jobs) == set(graph.jobs)
    assert all(j.status in ("Succeeded", "Failed", "Skipped") for j in jobs.values())

    # No job starts before each of its dependencies has ended well enough.
    for start, name, _ in sim.starts:
        for dep in graph.jobs[name].depends_on:
            dep_job = jobs[dep]
            assert dep_job.status in ("Succeeded", "Failed", "Skipped")
            if dep_job.status == "Failed":
                assert dep_job.reason == "AllowedFailure"
            if dep_job.status != "Skipped":
                assert dep_job.completed_at is not None
                assert (dep_job.completed_at - sim.final.status.started_at).total_seconds() <= start

    # A failed job's dependents are skipped.
    for name, job in jobs.items():
        if job.status == "Failed" and job.reason != "AllowedFailure":
            for dependent in graph.dependents[name]:
                assert jobs[dependent].status == "Skipped"

    # Attempts are started once each, in order, never beyond the retries.
    attempts: dict[str, list[int]] = {}
    for _, name, attempt in sim.starts:
        attempts.setdefault(name, []).append(attempt)
    for name, seen in attempts.items():
        assert seen == list(range(len(seen)))
        assert len(seen) <= graph.jobs[name].retries + 1

    # The run fails exactly when some job failed for good.
    hard_failures = [
        j for j in jobs.values() if j.status == "Failed" and j.reason != "AllowedFailure"
    ]
    assert (sim.phase == "Failed") == bool(hard_failures)

    # Finally jobs always run.
    for name in graph.finally_jobs:
        assert jobs[name].status in ("Succeeded", "Failed")


@settings(max_examples=60, deadline=None)
@given(pipelines())
def test_planner_is_deterministic(case: tuple[PipelineSpec, dict[str, Outcome]]) -> None:
    spec, outcomes = case
    first = simulate(spec, outcomes=outcomes)
    second = simulate(spec, outcomes=outcomes)
    assert first.starts == second.starts
    assert first.final == second.final
