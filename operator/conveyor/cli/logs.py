"""`conveyor logs RUN [JOB] [-f]`: the output of a run's jobs (latest attempt of each)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from conveyor.cli.kube import EXIT_OK, add_cluster_arguments, fail, with_cluster
from conveyor.core.manifests import ANNOTATION_JOB_NAME, LABEL_ATTEMPT, MAIN_CONTAINER

if TYPE_CHECKING:
    from conveyor.k8s.client import Kube


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="name of the PipelineRun")
    parser.add_argument(
        "job", metavar="JOB", nargs="?", help="a job (a matrix job's name shows every combination)"
    )
    parser.add_argument("-f", "--follow", action="store_true", help="stream while the job runs")
    add_cluster_arguments(parser)


def _latest_attempts(jobs: list[dict[str, Any]], wanted: str | None) -> list[dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for job in jobs:
        meta = job["metadata"]
        full = (meta.get("annotations") or {}).get(ANNOTATION_JOB_NAME)
        if not full or (wanted and full != wanted and full.split("[", 1)[0] != wanted):
            continue
        attempt = int(meta.get("labels", {}).get(LABEL_ATTEMPT, "0"))
        known = latest.get(full)
        if known is None or attempt > int(known["metadata"]["labels"].get(LABEL_ATTEMPT, "0")):
            latest[full] = job
    return sorted(latest.values(), key=lambda j: j["metadata"].get("creationTimestamp") or "")


def run(args: argparse.Namespace) -> int:
    async def body(kube: Kube, namespace: str) -> int:
        if await kube.get_run(namespace, args.run) is None:
            return fail(f"pipeline run {args.run!r} not found in namespace {namespace!r}")
        jobs = _latest_attempts(await kube.list_jobs(namespace, args.run), args.job)
        if not jobs:
            what = f"job {args.job!r}" if args.job else "any job"
            return fail(f"run {args.run!r} has not started {what} yet")
        pods = await kube.list_pods(namespace, args.run)
        for job in jobs:
            uid = job["metadata"]["uid"]
            owned = [
                p
                for p in pods
                if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
            ]
            full = job["metadata"]["annotations"][ANNOTATION_JOB_NAME]
            if len(jobs) > 1:
                print(f"==> {full} <==", flush=True)
            if not owned:
                print("(no pod yet)")
                continue
            pod = max(owned, key=lambda p: p["metadata"].get("creationTimestamp") or "")
            name = pod["metadata"]["name"]
            statuses = pod.get("status", {}).get("initContainerStatuses") or []
            for init in statuses:
                if (init.get("state") or {}).get("terminated", {}).get("exitCode", 0):
                    sys.stdout.write(await kube.pod_log(namespace, name, init["name"]))
            started = any(
                "waiting" not in (s.get("state") or {})
                for s in pod.get("status", {}).get("containerStatuses") or []
            )
            if not started:
                print("(the job has not started yet)")
                continue
            if args.follow:
                async for chunk in kube.follow_pod_log(namespace, name, MAIN_CONTAINER):
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
            else:
                sys.stdout.write(await kube.pod_log(namespace, name, MAIN_CONTAINER))
        return EXIT_OK

    return with_cluster(args, body)
