"""Scheduling on real processes: parallelism, dependencies, failures, retries and timeouts."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.local.conftest import RunPipeline, process_gone


def test_independent_jobs_run_at_the_same_time(run_pipeline: RunPipeline) -> None:
    result = run_pipeline(
        """
        stages:
          - name: s
            jobs:
              - {name: a, commands: ["sleep 1"]}
              - {name: b, commands: ["sleep 1"]}
        """,
        "--parallel",
        "4",
    )
    assert result.code == 0
    (a_start, a_end), (b_start, b_end) = result.times("a"), result.times("b")
    # They ran at the same time (a load-independent check), and so took about 1s, not 2s.
    assert a_start < b_end and b_start < a_end, "the two independent jobs did not overlap"
    span = (max(a_end, b_end) - min(a_start, b_start)).total_seconds()
    assert 1.0 <= span < 1.9, f"two 1s jobs took {span:.2f}s together"


def test_a_job_starts_after_its_own_dependencies_not_after_slow_siblings(
    run_pipeline: RunPipeline,
) -> None:
    result = run_pipeline(
        """
        stages:
          - name: s
            jobs:
              - {name: a, commands: ["sleep 0.2"]}
              - {name: b, commands: ["sleep 1.5"]}
              - {name: c, dependsOn: [a], commands: ["true"]}
        """,
        "--parallel",
        "4",
    )
    assert result.code == 0
    a_end = result.times("a")[1]
    b_end = result.times("b")[1]
    c_start = result.times("c")[0]
    assert c_start < b_end, "c waited for b, which it does not depend on"
    assert (c_start - a_end).total_seconds() < 0.5, "c did not start right after a"


def test_parallel_one_runs_jobs_one_at_a_time(run_pipeline: RunPipeline) -> None:
    result = run_pipeline(
        """
        stages:
          - name: s
            jobs:
              - {name: a, commands: ["sleep 0.3"]}
              - {name: b, commands: ["sleep 0.3"]}
              - {name: c, commands: ["sleep 0.3"]}
        """,
        "--parallel",
        "1",
    )
    assert result.code == 0
    spans = sorted(result.times(n) for n in "abc")
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, "two jobs overlapped with --parallel 1"


@pytest.mark.parametrize(
    ("branch", "integration"),
    [("main", "Succeeded"), ("feature/x", "Skipped")],
)
def test_condition_skips_a_stage_off_main(
    run_pipeline: RunPipeline, branch: str, integration: str
) -> None:
    result = run_pipeline(
        """
        stages:
          - name: build
            jobs: [{name: build, commands: ["true"]}]
          - name: integration
            condition: "branch == 'main'"
            jobs: [{name: integration, commands: ["true"]}]
          - name: ship
            jobs: [{name: ship, dependsOn: [integration], commands: ["true"]}]
        """,
        "--branch",
        branch,
    )
    assert result.code == 0
    assert result.job("integration")["status"] == integration
    assert result.job("ship")["status"] == "Succeeded"


def test_failure_stops_at_the_first_failing_command_skips_dependents_runs_finally(
    run_pipeline: RunPipeline,
) -> None:
    result = run_pipeline(
        """
        stages:
          - name: s
            jobs:
              - {name: broken, commands: ["echo one", "exit 3", "echo never-printed"]}
              - {name: after, dependsOn: [broken], commands: ["true"]}
          - name: later
            jobs: [{name: later, commands: ["true"]}]
        finally:
          - {name: cleanup, commands: ["echo cleaning"]}
        """
    )
    assert result.code == 1
    assert result.report["phase"] == "Failed"
    broken = result.job("broken")
    assert (broken["status"], broken["exitCode"]) == ("Failed", 3)
    assert "log: " in broken["message"]
    assert "never-printed" not in result.log("broken")
    assert "+ exit 3" in result.log("broken")
    assert (result.job("after")["status"], result.job("after")["reason"]) == (
        "Skipped",
        "UpstreamFailed",
    )
    assert result.job("later")["status"] == "Skipped"
    assert result.job("cleanup")["status"] == "Succeeded"
    assert "[cleanup] cleaning" in result.out


def test_allowed_failure_does_not_fail_the_run(run_pipeline: RunPipeline) -> None:
    result = run_pipeline(
        """
        stages:
          - name: s
            jobs:
              - {name: flaky, allowFailure: true, commands: ["exit 1"]}
              - {name: next, dependsOn: [flaky], commands: ["true"]}
        """
    )
    assert result.code == 0
    assert (result.job("flaky")["status"], result.job("flaky")["reason"]) == (
        "Failed",
        "AllowedFailure",
    )
    assert result.job("next")["status"] == "Succeeded"


def test_retry_runs_a_fresh_attempt(run_pipeline: RunPipeline, tmp_path: Path) -> None:
    marker = tmp_path / "failed-once"
    result = run_pipeline(
        f"""
        stages:
          - name: s
            jobs:
              - name: flaky
                retries: 1
                commands:
                  - touch left-by-attempt-$CONVEYOR_ATTEMPT
                  - ls left-by-attempt-*
                  - "if [ -f {marker} ]; then exit 0; fi; touch {marker}; exit 1"
        """
    )
    assert result.code == 0
    flaky = result.job("flaky")
    assert (flaky["status"], flaky["attempt"]) == ("Succeeded", 1)
    assert "exit 1" in result.log("flaky", 0)
    # A fresh workspace: the second attempt does not see the first one's file.
    assert "left-by-attempt-0" not in result.log("flaky", 1)


def test_timeout_kills_the_whole_process_group(run_pipeline: RunPipeline, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    result = run_pipeline(
        f"""
        stages:
          - name: s
            jobs:
              - name: hangs
                timeout: 1s
                commands: ["sleep 30 & echo $! > {pidfile}; wait"]
        """
    )
    assert result.code == 1
    hangs = result.job("hangs")
    assert (hangs["status"], hangs["reason"]) == ("Failed", "DeadlineExceeded")
    assert hangs["durationSeconds"] < 5
    assert process_gone(int(pidfile.read_text())), "the job's child outlived its timeout"


def test_run_timeout_from_the_pipeline_run(run_pipeline: RunPipeline) -> None:
    raw = """
apiVersion: conveyor.dev/v1alpha1
kind: PipelineRun
metadata: {name: slow}
spec:
  timeout: 1s
  pipelineSpec:
    stages:
      - name: s
        jobs: [{name: slow, commands: ["sleep 30"]}]
"""
    result = run_pipeline("", raw=raw)
    assert result.code == 1
    assert result.report["phase"] == "Failed"
    assert result.job("slow")["reason"] == "RunTimeout"
    assert result.report["durationSeconds"] < 5
