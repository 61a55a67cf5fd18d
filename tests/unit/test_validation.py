"""Validation: every problem at once, each with its field path and a useful message."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from conveyor.core.validation import parse_pipeline, parse_run


def pipeline(spec: str) -> dict[str, Any]:
    return {
        "apiVersion": "conveyor.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "p"},
        "spec": yaml.safe_load(spec),
    }


def problems_of(spec: str) -> list[str]:
    _, problems = parse_pipeline(pipeline(spec))
    return [str(p) for p in problems]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "stages: [{name: s, jobs: [{name: a, commands: [x]}, {name: b, dependsOn: [lnit], commands: [x]}]}]",
            "spec.stages[0].jobs[1].dependsOn[0]: unknown job 'lnit'",
        ),
        (
            "stages: [{name: s, jobs: [{name: lint, commands: [x]}, {name: b, dependsOn: [lnit], commands: [x]}]}]",
            "did you mean 'lint'?",
        ),
        (
            "stages: [{name: one, jobs: [{name: a, dependsOn: [b], commands: [x]}]}, {name: two, jobs: [{name: b, commands: [x]}]}]",
            "spec.stages[0].jobs[0].dependsOn[0]: 'b' is in the later stage 'two'",
        ),
        (
            "stages: [{name: s, jobs: [{name: a, dependsOn: [c], commands: [x]}, {name: b, dependsOn: [a], commands: [x]}, {name: c, dependsOn: [b], commands: [x]}]}]",
            "dependency cycle: ",
        ),
        (
            "stages: [{name: s, jobs: [{name: a, commands: [x]}, {name: a, commands: [y]}]}]",
            "spec.stages[0].jobs[1].name: duplicate job name 'a'",
        ),
        (
            "stages: [{name: s, jobs: [{name: a, commands: [x]}]}, {name: s, jobs: [{name: b, commands: [x]}]}]",
            "spec.stages[1].name: duplicate stage name 's'",
        ),
        (
            "stages: [{name: s, jobs: [{name: a, matrix: {v: [1, '1']}, commands: [x]}]}]",
            "duplicate job name 'a[v=1]'",
        ),
        (
            'stages: [{name: s, condition: "branch == ", jobs: [{name: a, commands: [x]}]}]',
            "spec.stages[0].condition: invalid condition",
        ),
        (
            "stages: [{name: s, condition: \"brnch == 'main'\", jobs: [{name: a, commands: [x]}]}]",
            "did you mean 'branch'?",
        ),
        (
            "stages: [{name: s, jobs: [{name: a, timeout: 10x, commands: [x]}]}]",
            "spec.stages[0].jobs[0].timeout: invalid duration '10x'",
        ),
        ("stages: [{name: s, jobs: []}]", "spec.stages[0].jobs: a stage needs at least one job"),
        (
            "stages: [{name: s, gate: {approvers: []}, jobs: [{name: a, commands: [x]}]}]",
            "spec.stages[0].gate.approvers: a gate needs at least one approver",
        ),
        (
            "stages: [{name: Build_All, jobs: [{name: a, commands: [x]}]}]",
            "spec.stages[0].name: 'Build_All' cannot become a Kubernetes name",
        ),
        (
            "stages: [{name: s, jobs: [{name: a, comands: [x]}]}]",
            "spec.stages[0].jobs[0].comands: unknown field",
        ),
        ("stages: []", "spec.stages: a pipeline needs at least one stage"),
        (
            "stages: [{name: s, jobs: [{name: a, commands: [x], cache: {key: \"{{ hashFile('x') }}\", paths: [n]}}]}]",
            "spec.stages[0].jobs[0].cache.key: unknown expression",
        ),
        (
            "stages: [{name: s, jobs: [{name: a, commands: [x]}]}]\nfinally: [{name: f, dependsOn: [a], commands: [x]}]",
            "spec.finally[0].dependsOn[0]: a finally job can only depend on other finally jobs",
        ),
        (
            "stages: [{name: s, jobs: [{name: a}]}]",
            "spec.stages[0].jobs[0].commands: a job needs at least one command",
        ),
        (
            "stages: [{name: finally, jobs: [{name: a, commands: [x]}]}]",
            "'finally' is reserved",
        ),
    ],
)
def test_problem_is_reported_with_its_path(spec: str, expected: str) -> None:
    found = problems_of(spec)
    assert any(expected in p for p in found), found


def test_cycle_is_printed_as_a_path() -> None:
    found = problems_of(
        "stages: [{name: s, jobs: [{name: a, dependsOn: [c], commands: [x]},"
        " {name: b, dependsOn: [a], commands: [x]}, {name: c, dependsOn: [b], commands: [x]}]}]"
    )
    cycles = [p for p in found if "cycle" in p]
    assert len(cycles) == 1
    assert cycles[0].endswith("a -> b -> c -> a")


def test_every_problem_is_reported_at_once() -> None:
    found = problems_of(
        "stages: [{name: s, gate: {approvers: []}, condition: 'x ==', "
        "jobs: [{name: a, dependsOn: [zz], commands: [x]}, {name: a, commands: [x]}]}]"
    )
    assert len(found) >= 4, found


def test_valid_pipeline_has_no_problems() -> None:
    parsed, problems = parse_pipeline(
        pipeline("stages: [{name: s, jobs: [{name: a, commands: [x], timeout: 90}]}]")
    )
    assert problems == []
    assert parsed is not None


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, "spec: set pipelineRef.name or an inline pipelineSpec"),
        ({"pipelineRef": {"name": "a"}, "pipelineSpec": {"stages": []}}, "set only one"),
        (
            {"pipelineSpec": {"stages": [{"name": "s", "jobs": []}]}},
            "spec.pipelineSpec.stages[0].jobs",
        ),
        ({"pipelineRef": {"name": "a"}, "context": {"branch": ["x"]}}, "spec.context.branch"),
    ],
)
def test_run_problems(spec: dict[str, Any], expected: str) -> None:
    _, problems = parse_run(
        {"apiVersion": "conveyor.dev/v1alpha1", "kind": "PipelineRun", "spec": spec}
    )
    assert any(expected in str(p) for p in problems), problems
