"""Shared plumbing of the cluster commands (`status`, `logs`, `approve`, `reject`, `cancel`).

Each command module keeps its own arguments; this one connects to the cluster, turns API
errors into one-line messages (never a traceback) and renders a run's status as text.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from conveyor.core.durations import format_duration
from conveyor.core.models import RunStatus

if TYPE_CHECKING:
    from conveyor.k8s.client import Kube

EXIT_OK = 0
EXIT_FAILED = 1


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n", "--namespace", help="namespace of the run (default: the kubeconfig's current one)"
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")


def fail(message: str) -> int:
    print(f"conveyor: error: {message}", file=sys.stderr)
    return EXIT_FAILED


def with_cluster(args: argparse.Namespace, body: Callable[[Kube, str], Awaitable[int]]) -> int:
    """Run `body(kube, namespace)`; API and connection errors become clear messages."""
    # The Kubernetes client is imported here, not at the top: every command starts fast.
    from conveyor.k8s.client import Kube, KubeError, current_namespace  # noqa: PLC0415

    namespace = args.namespace or current_namespace(args.kubeconfig)

    async def main() -> int:
        try:
            kube = await Kube.connect(args.kubeconfig)
        except Exception as err:
            return fail(f"cannot load the kubeconfig: {err}")
        try:
            return await body(kube, namespace)
        except KubeError as err:
            return fail(str(err))
        finally:
            await kube.close()

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 130


async def get_run_or_fail(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    run = await kube.get_run(namespace, name)
    if run is None:
        fail(f"pipeline run {name!r} not found in namespace {namespace!r}")
    return run


def render_status(run: dict[str, Any]) -> str:
    """A short text view of a run: phase, current stage, duration, then stages and jobs."""
    meta = run.get("metadata", {})
    status = RunStatus.model_validate(run.get("status") or {})
    lines = [f"{meta.get('name')}  {status.phase}"]
    if status.current_stage:
        lines[0] += f"  stage {status.current_stage}"
    if status.duration_seconds is not None:
        lines[0] += f"  {format_duration(status.duration_seconds)}"
    for condition in status.conditions:
        if condition.message:
            lines.append(f"  {condition.reason}: {condition.message}")
    for stage in status.stages:
        head = f"  {stage.name:<20} {stage.status}"
        if stage.approval is not None:
            by = f" by {stage.approval.by}" if stage.approval.by else ""
            head += f" ({stage.approval.decision}{by})"
        lines.append(head)
        for job in stage.jobs:
            row = f"    {job.name:<30} {job.status:<10}"
            if job.duration_seconds is not None:
                row += f" {format_duration(job.duration_seconds):>8}"
            if job.exit_code not in (None, 0):
                row += f"  exit {job.exit_code}"
            if job.cached_hit:
                row += "  cache hit"
            if job.attempt:
                row += f"  attempt {job.attempt + 1}"
            if job.reason:
                row += f"  {job.reason}"
            lines.append(row)
    return "\n".join(lines)
