"""Text renderings of a pipeline's graph: Mermaid flowcharts and Graphviz dot."""

from __future__ import annotations

import re

from conveyor.core.graph import Graph
from conveyor.core.models import FINALLY_STAGE


def _node_id(name: str) -> str:
    return "j_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _sections(graph: Graph) -> list[tuple[str, str, tuple[str, ...]]]:
    sections = [
        (stage.name, _stage_label(stage.name, stage.condition, stage.gate is not None), stage.jobs)
        for stage in graph.stages
    ]
    if graph.finally_jobs:
        sections.append((FINALLY_STAGE, "finally (always runs)", graph.finally_jobs))
    return sections


def _stage_label(name: str, condition: str | None, gated: bool) -> str:
    label = name
    if gated:
        label += " (gate: approval)"
    if condition:
        label += f" (if {condition})"
    return label


def to_mermaid(graph: Graph) -> str:
    lines = ["flowchart LR"]
    for index, (_, label, jobs) in enumerate(_sections(graph)):
        lines.append(f'  subgraph s{index}["{_escape(label)}"]')
        lines.extend(f'    {_node_id(job)}["{_escape(job)}"]' for job in jobs)
        lines.append("  end")
    for index in range(1, len(_sections(graph))):
        lines.append(f"  s{index - 1} -.-> s{index}")
    for job in graph.jobs.values():
        lines.extend(f"  {_node_id(dep)} --> {_node_id(job.name)}" for dep in job.depends_on)
    return "\n".join(lines) + "\n"


def to_dot(graph: Graph) -> str:
    lines = ["digraph pipeline {", "  rankdir=LR;", "  node [shape=box];"]
    for index, (_, label, jobs) in enumerate(_sections(graph)):
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f'    label="{_escape(label)}";')
        lines.extend(f'    {_node_id(job)} [label="{_escape(job)}"];' for job in jobs)
        lines.append("  }")
    for job in graph.jobs.values():
        lines.extend(f"  {_node_id(dep)} -> {_node_id(job.name)};" for dep in job.depends_on)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace('"', "'")
