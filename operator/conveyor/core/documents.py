"""Pipeline files: one YAML stream holding a Pipeline, a PipelineRun, or both.

Turns the text of a file into validated objects and the pipeline spec a run executes, with
every problem reported by field path (prefixed by the document's position when a file holds
more than one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from conveyor.core.models import Pipeline, PipelineRun, PipelineSpec, RunContext
from conveyor.core.problems import Problem
from conveyor.core.validation import parse_pipeline, parse_run

KINDS = ("Pipeline", "PipelineRun")


@dataclass
class PipelineFile:
    pipelines: list[Pipeline] = field(default_factory=list)
    runs: list[PipelineRun] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def parse_documents(text: str) -> PipelineFile:
    """Every Pipeline and PipelineRun in `text`, and every problem found in any of them."""
    out = PipelineFile()
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "yaml"
        problem = getattr(err, "problem", None) or str(err)
        out.problems.append(Problem(where, f"not valid YAML: {problem}"))
        return out
    if not docs:
        out.problems.append(Problem("", "the file holds no Pipeline or PipelineRun"))
    many = len(docs) > 1
    for index, doc in enumerate(docs):
        prefix = f"[document {index + 1}] " if many else ""
        out.problems.extend(_add_document(out, doc, prefix))
    return out


def _add_document(out: PipelineFile, doc: Any, prefix: str) -> list[Problem]:
    if not isinstance(doc, Mapping):
        return [Problem(prefix.strip() or "document", "expected a mapping with kind and spec")]
    kind = doc.get("kind")
    if kind not in KINDS:
        return [Problem(f"{prefix}kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")]
    if kind == "Pipeline":
        pipeline, problems = parse_pipeline(doc)
        if pipeline is not None:
            out.pipelines.append(pipeline)
    else:
        run, problems = parse_run(doc)
        if run is not None:
            out.runs.append(run)
    return [Problem(prefix + p.path, p.message) for p in problems]


@dataclass(frozen=True)
class RunnableFile:
    """What `conveyor run` executes: the pipeline spec and the run's context and name."""

    name: str
    spec: PipelineSpec
    context: RunContext
    timeout: int | float | str | None


def runnable(parsed: PipelineFile) -> tuple[RunnableFile | None, list[Problem]]:
    """Pick the pipeline to run from a parsed file (a run with its pipeline, or a pipeline)."""
    if parsed.problems:
        return None, parsed.problems
    by_name = {p.metadata.name: p for p in parsed.pipelines}
    if parsed.runs:
        run = parsed.runs[0]
        name = run.metadata.name or (run.metadata.generate_name or "run").rstrip("-")
        if run.spec.pipeline_spec is not None:
            return RunnableFile(
                name, run.spec.pipeline_spec, run.spec.context, run.spec.timeout
            ), []
        ref = run.spec.pipeline_ref.name if run.spec.pipeline_ref else ""
        if ref not in by_name:
            known = ", ".join(repr(n) for n in by_name if n) or "none"
            message = f"pipeline {ref!r} is not defined in this file (pipelines here: {known})"
            return None, [Problem("spec.pipelineRef.name", message)]
        return RunnableFile(name, by_name[ref].spec, run.spec.context, run.spec.timeout), []
    if parsed.pipelines:
        pipeline = parsed.pipelines[0]
        return RunnableFile(
            pipeline.metadata.name or "pipeline", pipeline.spec, RunContext(), None
        ), []
    return None, [Problem("", "the file holds no Pipeline or PipelineRun")]
