"""`conveyor status RUN [--watch]`: a run's phase, stages and jobs from its status."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from conveyor.cli.kube import (
    EXIT_FAILED,
    EXIT_OK,
    add_cluster_arguments,
    get_run_or_fail,
    render_status,
    with_cluster,
)

if TYPE_CHECKING:
    from conveyor.k8s.client import Kube

TERMINAL = ("Succeeded", "Failed", "Cancelled", "Skipped")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="name of the PipelineRun")
    parser.add_argument(
        "-w", "--watch", action="store_true", help="print each change until the run ends"
    )
    parser.add_argument("--interval", type=float, default=2.0, help=argparse.SUPPRESS)
    add_cluster_arguments(parser)


def run(args: argparse.Namespace) -> int:
    async def body(kube: Kube, namespace: str) -> int:
        shown = ""
        while True:
            found = await get_run_or_fail(kube, namespace, args.run)
            if found is None:
                return EXIT_FAILED
            text = render_status(found)
            if text != shown:
                print(text + ("\n" if args.watch else ""), flush=True)
                shown = text
            phase = (found.get("status") or {}).get("phase")
            if not args.watch or phase in TERMINAL:
                return EXIT_FAILED if phase in ("Failed", "Cancelled") else EXIT_OK
            await asyncio.sleep(args.interval)

    return with_cluster(args, body)
