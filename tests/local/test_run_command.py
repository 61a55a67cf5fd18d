"""`conveyor run` as users meet it: gates, exit codes, signals, reports, environment, example."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from conveyor.core.models import RunStatus
from tests.local.conftest import RunPipeline, conveyor_process, pipeline_yaml, process_gone

REPO = Path(__file__).resolve().parents[2]

GATED = """
stages:
  - name: build
    jobs: [{name: build, commands: ["true"]}]
  - name: deploy
    gate: {approvers: [anna]}
    jobs: [{name: deploy, commands: ["echo deploying"]}]
"""


@pytest.mark.parametrize(
    ("flags", "code", "phase", "deploy"),
    [
        (["--approve", "deploy"], 0, "Succeeded", "Succeeded"),
        (["--reject", "deploy"], 1, "Failed", "Skipped"),
        ([], 3, "WaitingApproval", "Pending"),
    ],
)
def test_gates(
    run_pipeline: RunPipeline, flags: list[str], code: int, phase: str, deploy: str
) -> None:
    result = run_pipeline(GATED, *flags)
    assert result.code == code
    assert result.report["phase"] == phase
    assert result.job("build")["status"] == "Succeeded"
    assert result.job("deploy")["status"] == deploy
    if code == 3:
        assert "--approve deploy" in result.err
    else:
        approval = result.stage("deploy")["approval"]
        assert approval["decision"] == ("Approved" if code == 0 else "Rejected")


def run_process(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    """`conveyor run` of `tmp_path/p.yaml` as a child process, its dirs under `tmp_path`."""
    return conveyor_process(
        "run", str(tmp_path / "p.yaml"), "--workdir", str(tmp_path / "w"),
        "--cache-dir", str(tmp_path / "c"), *extra,
    )  # fmt: skip


def test_waiting_gate_without_a_terminal_exits_3(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(pipeline_yaml(GATED))
    proc = run_process(tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, out + err
    assert "--approve deploy" in err


@pytest.mark.parametrize(
    ("body", "flags", "expected"),
    [
        ("stages: [{name: s, jobs: [{name: a, dependsOn: [b]}]}]", [], "spec.stages[0].jobs[0]"),
        ("stages: [{name: s, jobs: [{name: a}]", [], "not valid YAML"),
        (GATED, ["--approve", "build"], "--approve: stage 'build' has no gate"),
        (GATED, ["--reject", "nope"], "--reject: no stage 'nope'"),
    ],
)
def test_invalid_input_exits_2_with_file_path_message(
    run_pipeline: RunPipeline, body: str, flags: list[str], expected: str
) -> None:
    result = run_pipeline(body, *flags)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert lines and all("pipeline.yaml: " in line for line in lines), result.err
    assert expected in result.err
    assert result.report == {}


def test_invalid_file_has_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kind: Pipeline\nspec: {stages: 3}\n")
    proc = conveyor_process("run", str(path))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.startswith(f"{path}: ")
    assert "Traceback" not in out + err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_cancels_the_run_and_leaves_no_process(
    tmp_path: Path, sig: signal.Signals
) -> None:
    pidfile = tmp_path / "child.pid"
    (tmp_path / "p.yaml").write_text(
        pipeline_yaml(
            f"""
            stages:
              - name: s
                jobs:
                  - {{name: long, commands: ["sleep 60 & echo $! > {pidfile}; wait"]}}
                  - {{name: after, dependsOn: [long], commands: ["true"]}}
            """
        )
    )
    report = tmp_path / "report.json"
    proc = run_process(tmp_path, "--report", str(report))
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, out + err
    status = RunStatus.model_validate_json(report.read_text())
    assert status.phase == "Cancelled"
    jobs = {j.name: j for s in status.stages for j in s.jobs}
    assert (jobs["long"].status, jobs["long"].reason) == ("Failed", "Cancelled")
    assert jobs["after"].status == "Skipped"
    assert process_gone(int(pidfile.read_text())), "a job's process outlived the cancel"


def test_report_is_a_run_status_in_camel_case(run_pipeline: RunPipeline) -> None:
    result = run_pipeline("stages: [{name: s, jobs: [{name: a, commands: ['true']}]}]")
    report = result.report
    status = RunStatus.model_validate(report)
    assert status.model_dump(mode="json", by_alias=True) == report
    assert {"phase", "startedAt", "completedAt", "durationSeconds", "conditions"} <= set(report)
    job = report["stages"][0]["jobs"][0]
    assert {"exitCode", "cachedHit", "jobName", "durationSeconds"} <= set(job)


def test_jobs_see_the_run_environment(run_pipeline: RunPipeline) -> None:
    result = run_pipeline(
        """
        defaults: {env: {FROM_DEFAULTS: d}}
        stages:
          - name: check
            jobs:
              - name: show
                env: {FROM_JOB: j}
                matrix: {os: [linux]}
                commands:
                  - env | grep -E '^(CONVEYOR_|FROM_|OS=|HOME=)' | sort
                  - test "$PWD" = "$CONVEYOR_WORKSPACE"
        """,
        "--branch",
        "topic",
        "--commit",
        "abc123",
        "--event",
        "pull_request",
    )
    assert result.code == 0, result.out
    log = result.log("show[os=linux]")
    run_id = next(p.name for p in result.workdir.iterdir())
    for line in [
        f"CONVEYOR_RUN={run_id}",
        "CONVEYOR_JOB=show[os=linux]",
        "CONVEYOR_STAGE=check",
        "CONVEYOR_BRANCH=topic",
        "CONVEYOR_COMMIT=abc123",
        "CONVEYOR_EVENT=pull_request",
        "CONVEYOR_ATTEMPT=0",
        "FROM_DEFAULTS=d",
        "FROM_JOB=j",
        "OS=linux",
        "HOME=",
    ]:
        assert line in log, f"{line} missing from the job's environment"


def test_context_comes_from_the_pipeline_run_unless_flags_say_otherwise(
    run_pipeline: RunPipeline,
) -> None:
    raw = """
apiVersion: conveyor.dev/v1alpha1
kind: PipelineRun
metadata: {name: r}
spec:
  context: {branch: release/1, commit: feedbeef, event: tag}
  pipelineSpec:
    stages: [{name: s, jobs: [{name: a, commands: ['echo "$CONVEYOR_BRANCH $CONVEYOR_COMMIT"']}]}]
"""
    assert "[a] release/1 feedbeef" in run_pipeline("", raw=raw).out
    assert "[a] main feedbeef" in run_pipeline("", "--branch", "main", raw=raw).out


def test_trigger_mismatch_skips_the_run(run_pipeline: RunPipeline) -> None:
    result = run_pipeline(
        """
        trigger: {branches: [main]}
        stages: [{name: s, jobs: [{name: a, commands: ["exit 1"]}]}]
        """,
        "--branch",
        "feature/x",
    )
    assert result.code == 0
    assert result.report["phase"] == "Skipped"
    assert "skipped" in result.out and "does not match" in result.out


@pytest.mark.parametrize(
    ("branch", "integration"), [("feature/x", "Skipped"), ("main", "Succeeded")]
)
def test_web_example(run_pipeline: RunPipeline, branch: str, integration: str) -> None:
    example = REPO / "examples" / "web" / "pipeline.yaml"
    result = run_pipeline("", "--branch", branch, "--approve", "deploy-staging", path=example)
    assert result.code == 0, result.out
    statuses = {j["name"]: j["status"] for s in result.report["stages"] for j in s["jobs"]}
    assert statuses.pop("integration") == integration
    assert set(statuses.values()) == {"Succeeded"}
    assert len(statuses) == 9  # install, lint, unit, 4 x e2e, deploy, report
