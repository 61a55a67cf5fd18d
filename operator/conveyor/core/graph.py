"""The expanded job graph of a pipeline: matrix jobs expanded, defaults applied, edges resolved.

`build_graph` is the one place that turns a `PipelineSpec` into nodes and edges; validation,
the planner, `conveyor graph` and both executors all read the same graph.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from conveyor.core.conditions import suggestion
from conveyor.core.durations import parse_duration
from conveyor.core.models import (
    FINALLY_STAGE,
    ArtifactSpec,
    CacheSpec,
    GateSpec,
    JobSpec,
    PipelineSpec,
)
from conveyor.core.naming import matrix_env_name, matrix_job_name
from conveyor.core.problems import InvalidSpecError, Problem

DEFAULT_JOB_TIMEOUT_SECONDS = 3600.0


@dataclass(frozen=True)
class JobNode:
    """One runnable job after matrix expansion, with everything an executor needs."""

    name: str
    base_name: str
    stage: str
    stage_index: int
    is_finally: bool
    commands: tuple[str, ...]
    depends_on: tuple[str, ...]
    image: str | None
    env: tuple[tuple[str, str], ...]
    matrix: tuple[tuple[str, str], ...]
    timeout_seconds: float
    retries: int
    allow_failure: bool
    cache: CacheSpec | None
    artifacts: ArtifactSpec | None
    path: str  # field path of the job spec, for messages

    @property
    def env_dict(self) -> dict[str, str]:
        return dict(self.env)


@dataclass(frozen=True)
class StageNode:
    name: str
    index: int
    condition: str | None
    gate: GateSpec | None
    jobs: tuple[str, ...]


@dataclass(frozen=True)
class Graph:
    stages: tuple[StageNode, ...]
    jobs: Mapping[str, JobNode]
    finally_jobs: tuple[str, ...]
    dependents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Each stage's jobs (keyed by their tuple) with dependencies first; computed once here
    # because the planner walks it on every call.
    orders: Mapping[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)

    def stage_jobs(self, index: int) -> tuple[str, ...]:
        return self.stages[index].jobs if index < len(self.stages) else self.finally_jobs

    def start_order(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """`names` (one stage's jobs) ordered so that dependencies come first."""
        return self.orders.get(names) or dependency_order(self.jobs, names)


def dependency_order(jobs: Mapping[str, JobNode], names: tuple[str, ...]) -> tuple[str, ...]:
    """`names` with every job after those of its dependencies that are among `names`."""
    # Iterative depth-first walk: a chain of thousands of jobs must not hit Python's
    # recursion limit.
    order: list[str] = []
    seen: set[str] = set()
    members = set(names)
    for root in names:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(jobs[root].depends_on))]
        while stack:
            name, deps = stack[-1]
            dep = next((d for d in deps if d in members and d not in seen), None)
            if dep is None:
                order.append(name)
                stack.pop()
            else:
                seen.add(dep)
                stack.append((dep, iter(jobs[dep].depends_on)))
    return tuple(order)


def expand_matrix(matrix: Mapping[str, list[str]] | None) -> list[dict[str, str]]:
    """Every combination of matrix values, in declaration order; `[{}]` without a matrix."""
    if not matrix:
        return [{}]
    keys = list(matrix)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*matrix.values())]


def build_graph(spec: PipelineSpec) -> tuple[Graph, list[Problem]]:
    """Expand and link the pipeline's jobs; return the graph and every structural problem."""
    problems: list[Problem] = []
    nodes: dict[str, JobNode] = {}
    expansions: dict[str, list[str]] = {}  # spec name -> expanded names
    raw: list[tuple[JobSpec, str, str, int, bool, dict[str, str]]] = []
    stage_job_names: list[list[str]] = []

    sections: list[tuple[str, int, bool, list[JobSpec], str]] = [
        (stage.name, i, False, stage.jobs, f"spec.stages[{i}]")
        for i, stage in enumerate(spec.stages)
    ]
    sections.append((FINALLY_STAGE, len(spec.stages), True, spec.finally_, "spec"))

    for _stage, index, is_finally, jobs, prefix in sections:
        names: list[str] = []
        for j, job in enumerate(jobs):
            path = f"{prefix}.finally[{j}]" if is_finally else f"{prefix}.jobs[{j}]"
            if job.name in expansions:
                problems.append(Problem(f"{path}.name", f"duplicate job name {job.name!r}"))
                continue
            expansions[job.name] = []
            for combo in expand_matrix(job.matrix):
                name = matrix_job_name(job.name, combo) if combo else job.name
                if name in nodes:
                    problems.append(Problem(f"{path}.matrix", f"duplicate job name {name!r}"))
                    continue
                expansions[job.name].append(name)
                names.append(name)
                raw.append((job, name, path, index, is_finally, combo))
                nodes[name] = _placeholder(name)
        stage_job_names.append(names)

    stage_of: dict[str, int] = {r[1]: r[3] for r in raw}
    for job, name, path, index, is_finally, combo in raw:
        deps: list[str] = []
        for d, dep in enumerate(job.depends_on):
            dep_path = f"{path}.dependsOn[{d}]"
            targets = _resolve_dependency(dep, expansions, stage_of)
            if targets is None:
                choices = list(expansions) + [n for n in stage_of if n not in expansions]
                problems.append(Problem(dep_path, f"unknown job {dep!r}{suggestion(dep, choices)}"))
                continue
            for target in targets:
                target_stage = stage_of[target]
                if target == name:
                    problems.append(Problem(dep_path, f"job {name!r} cannot depend on itself"))
                elif is_finally and target_stage != index:
                    problems.append(
                        Problem(
                            dep_path,
                            f"a finally job can only depend on other finally jobs, not {dep!r}",
                        )
                    )
                elif not is_finally and target_stage == len(spec.stages):
                    problems.append(
                        Problem(dep_path, f"{dep!r} is a finally job; finally jobs run last")
                    )
                elif target_stage > index:
                    later = spec.stages[target_stage].name
                    problems.append(
                        Problem(
                            dep_path,
                            f"{dep!r} is in the later stage {later!r}; dependsOn may only name "
                            "jobs of the same or an earlier stage",
                        )
                    )
                elif target not in deps:
                    deps.append(target)
        stage_name = spec.stages[index].name if index < len(spec.stages) else FINALLY_STAGE
        nodes[name] = _node(spec, job, name, path, (stage_name, index, is_finally), combo, deps)

    stages = tuple(
        StageNode(s.name, i, s.condition, s.gate, tuple(stage_job_names[i]))
        for i, s in enumerate(spec.stages)
    )
    dependents: dict[str, list[str]] = {n: [] for n in nodes}
    for node in nodes.values():
        for dep in node.depends_on:
            dependents[dep].append(node.name)
    sections_jobs = [s.jobs for s in stages] + [tuple(stage_job_names[-1])]
    graph = Graph(
        stages=stages,
        jobs=nodes,
        finally_jobs=tuple(stage_job_names[-1]),
        dependents={k: tuple(v) for k, v in dependents.items()},
        orders={names: dependency_order(nodes, names) for names in sections_jobs},
    )
    for cycle in find_cycles(graph):
        first = graph.jobs[cycle[0]]
        problems.append(
            Problem(f"{first.path}.dependsOn", "dependency cycle: " + " -> ".join(cycle))
        )
    return graph, problems


def require_graph(spec: PipelineSpec) -> Graph:
    """The graph of a spec that must be valid; raise InvalidSpecError otherwise."""
    graph, problems = build_graph(spec)
    if problems:
        raise InvalidSpecError(problems)
    return graph


def _resolve_dependency(
    dep: str, expansions: Mapping[str, list[str]], stage_of: Mapping[str, int]
) -> list[str] | None:
    # A matrix job's base name means all of its combinations; one combination can be named too.
    if dep in expansions:
        return list(expansions[dep])
    if dep in stage_of:
        return [dep]
    return None


def find_cycles(graph: Graph) -> list[list[str]]:
    """Each dependency cycle once, as a closed path `[a, b, c, a]`, in a stable order."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph.jobs, white)
    cycles: list[list[str]] = []
    for start in graph.jobs:
        if colour[start] != white:
            continue
        stack: list[tuple[str, Iterable[str]]] = [(start, iter(graph.jobs[start].depends_on))]
        path = [start]
        colour[start] = grey
        while stack:
            node, children = stack[-1]
            child = next(iter(children), None)
            if child is None:
                colour[node] = black
                stack.pop()
                path.pop()
                continue
            if colour[child] == grey:
                # Report in "runs before" order: a dependency comes first.
                loop = [*path[path.index(child) :], child]
                cycles.append(list(reversed(loop)))
            elif colour[child] == white:
                colour[child] = grey
                path.append(child)
                stack.append((child, iter(graph.jobs[child].depends_on)))
    return cycles


def _placeholder(name: str) -> JobNode:
    return JobNode(name, name, "", 0, False, (), (), None, (), (), 0.0, 0, False, None, None, "")


def _node(
    spec: PipelineSpec,
    job: JobSpec,
    name: str,
    path: str,
    where: tuple[str, int, bool],
    combo: dict[str, str],
    deps: list[str],
) -> JobNode:
    stage, index, is_finally = where
    env = dict(spec.defaults.env)
    env.update(job.env)
    for key, value in combo.items():
        env[matrix_env_name(key)] = value
    timeout = job.timeout if job.timeout is not None else spec.defaults.timeout
    return JobNode(
        name=name,
        base_name=job.name,
        stage=stage,
        stage_index=index,
        is_finally=is_finally,
        commands=tuple(job.commands),
        depends_on=tuple(deps),
        image=job.image or spec.defaults.image,
        env=tuple(env.items()),
        matrix=tuple(combo.items()),
        timeout_seconds=(
            parse_duration(timeout) if timeout is not None else DEFAULT_JOB_TIMEOUT_SECONDS
        ),
        retries=job.retries,
        allow_failure=job.allow_failure,
        cache=job.cache,
        artifacts=job.artifacts,
        path=path,
    )
