"""Validation of Pipelines and PipelineRuns: every problem at once, each with its field path.

One validation serves the CLI, the local runner, the operator and the admission webhook.
Structure (types, unknown fields, durations) is checked by the models; meaning (names,
dependencies, cycles, conditions, gates, cache keys) is checked here on the expanded graph.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from conveyor.core.cachekey import CacheKeyError, parse_cache_key
from conveyor.core.conditions import ConditionError, compile_condition
from conveyor.core.graph import build_graph
from conveyor.core.models import FINALLY_STAGE, JobSpec, Pipeline, PipelineRun, PipelineSpec
from conveyor.core.naming import name_problem
from conveyor.core.problems import Problem


def problems_from_pydantic(err: ValidationError, prefix: str = "") -> list[Problem]:
    """Turn pydantic's errors into `path: message` problems using the wire (camelCase) names."""
    problems: list[Problem] = []
    for item in err.errors():
        path = _join_path(prefix, item["loc"])
        message = item["msg"]
        kind = item["type"]
        if kind == "extra_forbidden":
            message = "unknown field; check its spelling and indentation"
        elif kind == "missing":
            message = "required field is missing"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        problems.append(Problem(path, message))
    return problems


def _join_path(prefix: str, loc: Sequence[int | str]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith("function-"):
            continue  # pydantic's validator markers carry no meaning for users
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def validate_pipeline_spec(spec: PipelineSpec, prefix: str = "spec") -> list[Problem]:
    """Every semantic problem of a structurally valid spec."""
    problems: list[Problem] = []
    if not spec.stages:
        problems.append(Problem(f"{prefix}.stages", "a pipeline needs at least one stage"))
    seen_stages: set[str] = set()
    for i, stage in enumerate(spec.stages):
        path = f"{prefix}.stages[{i}]"
        problem = name_problem(stage.name)
        if problem:
            problems.append(Problem(f"{path}.name", problem))
        if stage.name == FINALLY_STAGE:
            problems.append(
                Problem(f"{path}.name", f"{FINALLY_STAGE!r} is reserved for the finally jobs")
            )
        if stage.name in seen_stages:
            problems.append(Problem(f"{path}.name", f"duplicate stage name {stage.name!r}"))
        seen_stages.add(stage.name)
        if not stage.jobs:
            problems.append(Problem(f"{path}.jobs", "a stage needs at least one job"))
        if stage.condition is not None:
            try:
                compile_condition(stage.condition)
            except ConditionError as err:
                problems.append(Problem(f"{path}.condition", f"invalid condition: {err}"))
        if stage.gate is not None and not stage.gate.approvers:
            problems.append(
                Problem(
                    f"{path}.gate.approvers",
                    "a gate needs at least one approver (a user name or group:<name>)",
                )
            )
        for j, job in enumerate(stage.jobs):
            problems.extend(_job_problems(job, f"{path}.jobs[{j}]"))
    for j, job in enumerate(spec.finally_):
        problems.extend(_job_problems(job, f"{prefix}.finally[{j}]"))

    _, graph_problems = build_graph(spec)
    problems.extend(_prefixed(graph_problems, prefix))
    return _unique(problems)


def _job_problems(job: JobSpec, path: str) -> list[Problem]:
    problems: list[Problem] = []
    problem = name_problem(job.name)
    if problem:
        problems.append(Problem(f"{path}.name", problem))
    if not job.commands:
        problems.append(Problem(f"{path}.commands", "a job needs at least one command"))
    if job.cache is not None:
        try:
            parse_cache_key(job.cache.key)
        except CacheKeyError as err:
            problems.append(Problem(f"{path}.cache.key", str(err)))
    if job.matrix is not None:
        if not job.matrix:
            problems.append(Problem(f"{path}.matrix", "a matrix needs at least one variable"))
        for key, values in job.matrix.items():
            if not values:
                problems.append(Problem(f"{path}.matrix.{key}", "needs at least one value"))
    for key in job.env:
        if not key or not (key[0].isalpha() or key[0] == "_") or not key.replace("_", "").isalnum():
            problems.append(
                Problem(f"{path}.env.{key}", "environment variable names are letters, digits and _")
            )
    return problems


def _prefixed(problems: list[Problem], prefix: str) -> list[Problem]:
    # Graph problems carry paths relative to a `spec` root; re-root them under `prefix`.
    if prefix == "spec":
        return problems
    return [Problem(prefix + p.path[len("spec") :], p.message) for p in problems]


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    out: list[Problem] = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            out.append(problem)
    return out


def parse_pipeline(data: Mapping[str, Any]) -> tuple[Pipeline | None, list[Problem]]:
    """A Pipeline object from its wire form, and every problem with it."""
    try:
        pipeline = Pipeline.model_validate(data)
    except ValidationError as err:
        return None, problems_from_pydantic(err)
    problems = validate_pipeline_spec(pipeline.spec)
    return (pipeline if not problems else None), problems


def parse_run(data: Mapping[str, Any]) -> tuple[PipelineRun | None, list[Problem]]:
    """A PipelineRun from its wire form (status ignored), and every problem with its spec."""
    body = {k: v for k, v in data.items() if k != "status"}
    try:
        run = PipelineRun.model_validate(body)
    except ValidationError as err:
        return None, problems_from_pydantic(err)
    problems: list[Problem] = []
    spec = run.spec
    if spec.pipeline_ref is None and spec.pipeline_spec is None:
        problems.append(Problem("spec", "set pipelineRef.name or an inline pipelineSpec"))
    if spec.pipeline_ref is not None and spec.pipeline_spec is not None:
        problems.append(Problem("spec", "set only one of pipelineRef and pipelineSpec"))
    if spec.pipeline_spec is not None:
        problems.extend(validate_pipeline_spec(spec.pipeline_spec, "spec.pipelineSpec"))
    return (run if not problems else None), problems


def validate_spec_data(data: Mapping[str, Any], prefix: str = "spec") -> list[Problem]:
    """Problems of a raw pipeline spec mapping (for an admission webhook or a resolved ref)."""
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as err:
        return problems_from_pydantic(err, prefix)
    return validate_pipeline_spec(spec, prefix)
