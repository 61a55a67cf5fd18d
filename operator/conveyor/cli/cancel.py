"""`conveyor cancel RUN`: ask the operator to stop a run (annotation `conveyor.dev/cancel`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from conveyor.cli.kube import EXIT_OK, add_cluster_arguments, fail, with_cluster

if TYPE_CHECKING:
    from conveyor.k8s.client import Kube


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="name of the PipelineRun")
    add_cluster_arguments(parser)


def run(args: argparse.Namespace) -> int:
    async def body(kube: Kube, namespace: str) -> int:
        found = await kube.get_run(namespace, args.run)
        if found is None:
            return fail(f"pipeline run {args.run!r} not found in namespace {namespace!r}")
        phase = (found.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed", "Cancelled", "Skipped"):
            return fail(f"run {args.run!r} has already ended ({phase})")
        await kube.patch_run_annotations(namespace, args.run, {"conveyor.dev/cancel": "true"})
        print(f"{args.run}: cancel requested")
        return EXIT_OK

    return with_cluster(args, body)
