"""Makespan of `conveyor run` on random sleep-based DAGs with a known critical path.

For each size it writes a pipeline whose jobs sleep 0.05-0.2s and depend on up to three
recent jobs, runs it through the real CLI in a child process, and reads the report:

- makespan: first job start to last job end, from the report timestamps;
- critical path: the longest chain of sleeps, the best any scheduler can do;
- overhead per job: (makespan - critical path) / jobs, with a cap high enough not to bind;
- latency: from the last dependency's end to the job's start (the scheduler's reaction time).

Usage: python bench/local_makespan.py [--sizes 10,100,1000] [--profile 1000]
`--profile N` runs one N-job pipeline in this process under cProfile and prints the top.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

WINDOW = 40  # a job depends on jobs among the previous WINDOW: deep and wide DAGs
HIGH_CAP = 256


def random_dag(jobs: int, seed: int) -> tuple[list[dict[str, Any]], float, float]:
    """Job specs, the critical path length and the total work, in seconds."""
    rng = random.Random(seed)
    specs: list[dict[str, Any]] = []
    finish: list[float] = []
    total = 0.0
    for i in range(jobs):
        seconds = round(rng.uniform(0.05, 0.2), 3)
        earlier = list(range(max(0, i - WINDOW), i))
        deps = sorted(rng.sample(earlier, min(len(earlier), rng.randint(0, 3)))) if i else []
        start = max((finish[d] for d in deps), default=0.0)
        finish.append(start + seconds)
        total += seconds
        needs = [f"j{d}" for d in deps]
        specs.append({"name": f"j{i}", "dependsOn": needs, "commands": [f"sleep {seconds}"]})
    return specs, max(finish), total


def write_pipeline(directory: Path, specs: list[dict[str, Any]]) -> Path:
    doc = {
        "apiVersion": "conveyor.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": f"bench-{len(specs)}"},
        "spec": {"stages": [{"name": "all", "jobs": specs}]},
    }
    path = directory / "pipeline.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def measure(report: dict[str, Any], specs: list[dict[str, Any]]) -> dict[str, float]:
    jobs = {j["name"]: j for s in report["stages"] for j in s["jobs"]}
    starts = {n: parse(j["startedAt"]) for n, j in jobs.items()}
    ends = {n: parse(j["completedAt"]) for n, j in jobs.items()}
    makespan = (max(ends.values()) - min(starts.values())).total_seconds()
    latencies = [
        (starts[s["name"]] - max(ends[d] for d in s["dependsOn"])).total_seconds()
        for s in specs
        if s["dependsOn"]
    ]
    latencies.sort()
    return {
        "makespan": makespan,
        "latency_mean": statistics.fmean(latencies) if latencies else 0.0,
        "latency_p95": latencies[int(0.95 * (len(latencies) - 1))] if latencies else 0.0,
    }


def run_cli(pipeline: Path, work: Path, parallel: int | None) -> tuple[dict[str, Any], float]:
    report = work / f"report-{parallel}.json"
    argv = [sys.executable, "-m", "conveyor.cli.main", "run", str(pipeline)]
    argv += ["--workdir", str(work / "runs"), "--cache-dir", str(work / "cache")]
    argv += ["--report", str(report)]
    if parallel is not None:
        argv += ["--parallel", str(parallel)]
    began = time.monotonic()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    wall = time.monotonic() - began
    if done.returncode != 0:
        raise SystemExit(f"conveyor run failed ({done.returncode}): {done.stderr.decode()}")
    data: dict[str, Any] = json.loads(report.read_text())
    return data, wall


def bench(sizes: list[int]) -> None:
    cpus = os.cpu_count() or 1
    print(f"machine: {cpus} CPU(s), Python {sys.version.split()[0]}")
    header = (
        f"{'jobs':>5} {'cap':>5} {'critical':>9} {'work':>7} {'makespan':>9} {'ratio':>6} "
        f"{'ovh/job':>8} {'lat mean':>9} {'lat p95':>8} {'wall':>6}"
    )
    print(header)
    for size in sizes:
        specs, critical, work_total = random_dag(size, seed=size)
        with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
            work = Path(tmp)
            (work / "src").mkdir()
            pipeline = write_pipeline(work / "src", specs)
            for cap in (HIGH_CAP, None):
                report, wall = run_cli(pipeline, work, cap)
                m = measure(report, specs)
                # With the cap binding, no schedule beats the work spread over the cap.
                bound = max(critical, work_total / (cap or cpus))
                print(
                    f"{size:>5} {cap or cpus:>5} {critical:>8.2f}s {work_total:>6.1f}s "
                    f"{m['makespan']:>8.2f}s {m['makespan'] / bound:>6.2f} "
                    f"{(m['makespan'] - bound) / size * 1000:>6.1f}ms "
                    f"{m['latency_mean'] * 1000:>7.1f}ms {m['latency_p95'] * 1000:>6.1f}ms "
                    f"{wall:>5.1f}s",
                    flush=True,
                )


def profile(size: int) -> None:
    from conveyor.cli.main import main  # noqa: PLC0415

    specs, critical, _ = random_dag(size, seed=size)
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        work = Path(tmp)
        (work / "src").mkdir()
        pipeline = write_pipeline(work / "src", specs)
        argv = ["run", str(pipeline), "--workdir", str(work / "runs")]
        argv += ["--cache-dir", str(work / "cache"), "--parallel", str(HIGH_CAP)]
        profiler = cProfile.Profile()
        began = time.monotonic()
        with contextlib.redirect_stdout(io.StringIO()):
            profiler.runcall(main, argv)
        print(f"{size} jobs: {time.monotonic() - began:.2f}s (critical path {critical:.2f}s)")
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(18)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--profile", type=int, metavar="N")
    args = parser.parse_args()
    if args.profile:
        profile(args.profile)
    else:
        bench([int(s) for s in args.sizes.split(",")])


if __name__ == "__main__":
    main()
