"""How fast does the operator react? Delay from a job's pod finishing to its dependents' Jobs.

Runs `conveyor operator` against the cluster in $KUBECONFIG (the local one: `hack/cluster.sh
up`, then `eval "$(hack/cluster.sh env)"`), applies one PipelineRun of WIDTH parallel chains of
DEPTH trivial busybox jobs, and watches pods and Jobs from here. For every job with a
dependency it measures: (the dependent's Job appears) - (the dependency's main container is
seen terminated), both as observed by this process's watches. Prints p50/p90/p99/max.

    python bench/operator_latency.py [--width 4] [--depth 10]

With `--fake-nodes N` the pods run on N kwok nodes instead of the kubelet (kwok is built by
hack/cluster/build-kwok.sh; its pods start and complete at once, and the real node is cordoned
for the duration), so hundreds of jobs measure the operator rather than container start-up:

    python bench/operator_latency.py --width 20 --depth 25 --fake-nodes 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config, watch

REPO = Path(__file__).resolve().parents[1]
IMAGE = "localhost/conveyor/busybox:1"
REAL_NODE = "conveyor-node"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "conveyor/k8s-v1.34.4"


def kubectl(*args: str, data: str | None = None) -> str:
    proc = subprocess.run(
        ["kubectl", *args], input=data, capture_output=True, text=True, check=True
    )
    return proc.stdout


def run_manifest(name: str, width: int, depth: int) -> dict[str, Any]:
    jobs = []
    for level in range(depth):
        for lane in range(width):
            job: dict[str, Any] = {"name": f"j{level}-{lane}", "commands": ["true"]}
            if level:
                job["dependsOn"] = [f"j{level - 1}-{lane}"]
            jobs.append(job)
    return {
        "apiVersion": "conveyor.dev/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": name},
        "spec": {
            "context": {"branch": "main"},
            "pipelineSpec": {
                "defaults": {"image": IMAGE, "timeout": 120},
                "stages": [{"name": "bench", "jobs": jobs}],
            },
        },
    }


async def observe(
    namespace: str, total: int, finished: dict[str, float], created: dict[str, float]
) -> None:
    await config.load_kube_config()
    async with client.ApiClient() as api:
        core, batch = client.CoreV1Api(api), client.BatchV1Api(api)

        async def pods() -> None:
            async with watch.Watch().stream(core.list_namespaced_pod, namespace) as stream:
                async for event in stream:
                    pod = event["object"]
                    job = (pod.metadata.annotations or {}).get("conveyor.dev/job-name")
                    for status in pod.status.container_statuses or []:
                        if (
                            status.name == "main"
                            and status.state.terminated
                            and job not in finished
                        ):
                            finished[job] = time.monotonic()
                    if len(finished) >= total:
                        return

        async def jobs() -> None:
            async with watch.Watch().stream(batch.list_namespaced_job, namespace) as stream:
                async for event in stream:
                    job = (event["object"].metadata.annotations or {}).get("conveyor.dev/job-name")
                    if job and job not in created:
                        created[job] = time.monotonic()
                    if len(created) >= total:
                        return

        await asyncio.wait_for(asyncio.gather(pods(), jobs()), timeout=900)


def fake_node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"type": "kwok", "kubernetes.io/hostname": name},
        },
        "status": {"allocatable": {"cpu": "64", "memory": "256Gi", "pods": "500"},
                   "capacity": {"cpu": "64", "memory": "256Gi", "pods": "500"}},
    }  # fmt: skip


def start_fake_nodes(count: int, log_path: str) -> subprocess.Popen[bytes]:
    """kwok with `count` fake nodes; the real node is cordoned so every pod lands on them."""
    home = Path(
        subprocess.run(
            [str(REPO / "hack/cluster/build-kwok.sh"), str(CACHE)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    stages = [f"--config={p}" for p in sorted((home / "stages").glob("*.yaml"))]
    with open(log_path, "wb") as log:
        kwok = subprocess.Popen(
            [str(home / "kwok"), f"--kubeconfig={os.environ['KUBECONFIG']}",
             "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
             "--cidr=10.216.0.0/16", "--node-ip=10.213.0.1", *stages],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    for index in range(count):
        kubectl("apply", "-f", "-", data=json.dumps(fake_node(f"kwok-node-{index}")))
    kubectl("wait", "--for=condition=Ready", "node", "-l", "type=kwok", "--timeout=60s")
    kubectl("cordon", REAL_NODE)
    return kwok


def stop_fake_nodes(kwok: subprocess.Popen[bytes]) -> None:
    kubectl("uncordon", REAL_NODE)
    kubectl("delete", "node", "-l", "type=kwok", "--wait=false")
    kwok.terminate()
    kwok.wait(20)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--width", type=int, default=4)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--fake-nodes", type=int, default=0, help="run pods on kwok nodes")
    args = parser.parse_args()
    if not os.environ.get("KUBECONFIG"):
        print('set KUBECONFIG (eval "$(hack/cluster.sh env)")', file=sys.stderr)
        return 2
    namespace = f"bench-{secrets.token_hex(3)}"
    kubectl("apply", "-f", str(REPO / "crds"))
    kubectl("create", "namespace", namespace)
    kwok = (
        start_fake_nodes(args.fake_nodes, f"/tmp/{namespace}-kwok.log") if args.fake_nodes else None
    )
    with open(f"/tmp/{namespace}-operator.log", "wb") as log:
        operator = subprocess.Popen(
            [sys.executable, "-m", "conveyor.cli.main", "operator", "--image-pull-policy", "Never",
             "--namespace", namespace],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    finished: dict[str, float] = {}
    created: dict[str, float] = {}
    total = args.width * args.depth
    try:
        time.sleep(3)  # the service account controller, and the operator's first watch
        kubectl(
            "apply",
            "-n",
            namespace,
            "-f",
            "-",
            data=json.dumps(run_manifest("bench", args.width, args.depth)),
        )
        started = time.monotonic()
        asyncio.run(observe(namespace, total, finished, created))
        elapsed = time.monotonic() - started
        rss = (
            Path(f"/proc/{operator.pid}/status")
            .read_text()
            .split("VmRSS:")[1]
            .split("\n")[0]
            .strip()
        )
        cpu = cpu_seconds(operator.pid)
        # The run's status once the operator has written its end.
        deadline = time.monotonic() + 120
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = json.loads(kubectl("get", "plr", "bench", "-n", namespace, "-o", "json"))
            if (status.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                break
            time.sleep(0.5)
        status_bytes = len(json.dumps(status.get("status") or {}))
        phase = (status.get("status") or {}).get("phase")
    finally:
        operator.terminate()
        operator.wait(20)
        if kwok is not None:
            stop_fake_nodes(kwok)
        kubectl("delete", "namespace", namespace, "--wait=false")
    delays = []
    for level in range(1, args.depth):
        for lane in range(args.width):
            job, dep = f"j{level}-{lane}", f"j{level - 1}-{lane}"
            delays.append((created[job] - finished[dep]) * 1000)
    where = f"{args.fake_nodes} kwok nodes" if args.fake_nodes else "the kubelet"
    print(
        f"{total} jobs ({args.width} chains of {args.depth}) on {where} in {elapsed:.1f}s; "
        f"run {phase}; status {status_bytes / 1024:.1f} KiB; "
        f"operator RSS {rss}, CPU {cpu:.1f}s"
    )
    print(
        f"pod finished -> dependent Job created, {len(delays)} samples: "
        f"p50 {statistics.median(delays):.0f} ms, p90 {percentile(delays, 0.9):.0f} ms, "
        f"p99 {percentile(delays, 0.99):.0f} ms, max {max(delays):.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
