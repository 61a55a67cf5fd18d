"""`conveyor approve|reject RUN STAGE`: decide a waiting gate through the run's annotations.

The same as `kubectl annotate plr RUN approve.conveyor.dev/STAGE=true` (or
`reject.conveyor.dev/STAGE=REASON`); the operator records the decision in the run's status.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from conveyor.cli.kube import EXIT_FAILED, EXIT_OK, add_cluster_arguments, fail, with_cluster

if TYPE_CHECKING:
    from conveyor.k8s.client import Kube


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="name of the PipelineRun")
    parser.add_argument("stage", metavar="STAGE", help="the gated stage")
    parser.add_argument("-m", "--message", help="a reason (recorded with the decision)")
    add_cluster_arguments(parser)


def run(args: argparse.Namespace) -> int:
    approve = args.command == "approve"
    prefix = "approve.conveyor.dev/" if approve else "reject.conveyor.dev/"

    async def body(kube: Kube, namespace: str) -> int:
        found = await kube.get_run(namespace, args.run)
        if found is None:
            return fail(f"pipeline run {args.run!r} not found in namespace {namespace!r}")
        stages = {s.get("name"): s for s in (found.get("status") or {}).get("stages") or []}
        if stages and args.stage not in stages:
            known = ", ".join(str(name) for name in stages)
            return fail(f"run {args.run!r} has no stage {args.stage!r} (stages: {known})")
        stage = stages.get(args.stage) or {}
        if stage.get("approval"):
            decision = stage["approval"].get("decision")
            return fail(f"stage {args.stage!r} is already decided: {decision}")
        value = args.message or ("true" if approve else "rejected")
        await kube.patch_run_annotations(namespace, args.run, {prefix + args.stage: value})
        verb = "approved" if approve else "rejected"
        print(f"{args.run}: stage {args.stage} {verb}")
        return EXIT_OK if found else EXIT_FAILED

    return with_cluster(args, body)
