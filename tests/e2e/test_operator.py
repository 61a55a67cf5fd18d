"""The operator end to end: real cluster, real pods, `conveyor operator` on the host.

Each test applies PipelineRuns in its own namespace (which enforces the restricted Pod
Security Standard) and checks the run's status, its Jobs and Events.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    Operator,
    Sink,
    apply,
    event_reasons,
    get_run,
    jobs_of,
    k8s_jobs,
    pipeline_run,
    stage_of,
    wait_run,
)
from tests.integration.cluster import (
    BUSYBOX_IMAGE,
    TOOLS_IMAGE,
    Kubectl,
    KubectlError,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
NODE_IP = "10.213.0.1"  # the node's address on this host (hack/cluster.sh): pods reach it
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SEED_PIPELINE = f"""
apiVersion: conveyor.dev/v1alpha1
kind: Pipeline
metadata: {{name: web}}
spec:
  trigger: {{branches: ["main", "feature/*"], events: [push]}}
  defaults: {{image: "{TOOLS_IMAGE}", timeout: 2m, env: {{CI: "true"}}}}
  cache: {{claimName: conveyor-cache}}
  stages:
    - name: check
      jobs:
        - name: install
          commands:
            - "echo lockfile-v1 > package-lock.json"
            - "mkdir -p node_modules/left-pad && echo 'module' > node_modules/left-pad/index.js"
            - "sleep 1"
          cache:
            key: "npm-{{{{ hashFiles('package-lock.json') }}}}"
            paths: [node_modules]
            skipOnHit: true
          artifacts: {{paths: [node_modules], expireIn: 1h}}
        - name: lint
          dependsOn: [install]
          commands: ["test -f node_modules/left-pad/index.js", "sleep 3", "echo lint ok"]
        - name: unit
          dependsOn: [install]
          commands: ["test -f node_modules/left-pad/index.js", "sleep 3", "echo unit ok"]
    - name: integration
      condition: "branch == 'main'"
      jobs: [{{name: integration, commands: ["echo integration"]}}]
    - name: deploy-staging
      gate: {{approvers: ["anna", "group:team-leads"], timeout: 1h}}
      jobs: [{{name: deploy, dependsOn: [unit], commands: ["echo deploying to staging"]}}]
  finally:
    - {{name: report, image: "{BUSYBOX_IMAGE}", commands: ["echo report"]}}
"""


def seed_run(name: str, branch: str) -> str:
    return f"""
apiVersion: conveyor.dev/v1alpha1
kind: PipelineRun
metadata: {{name: {name}}}
spec:
  pipelineRef: {{name: web}}
  context: {{branch: "{branch}", commit: 3f2c9e1, event: push, triggeredBy: anna}}
"""


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def simple(jobs: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "defaults": {"image": BUSYBOX_IMAGE, "timeout": 60},
        "stages": [{"name": "main", "jobs": jobs}],
        **spec,
    }


def test_seed_scenario_with_gate_cache_and_notifications(
    kubectl: Kubectl, ns: str, cache_claim: str, operator: Operator, notifications: Sink
) -> None:
    apply(kubectl, ns, SEED_PIPELINE)
    apply(kubectl, ns, seed_run("web-1", "main"))
    run = wait_run(kubectl, ns, "web-1", ("WaitingApproval",), operator=operator)
    assert stage_of(run, "deploy-staging")["status"] == "Waiting"
    assert run["status"]["currentStage"] == "deploy-staging"
    jobs = jobs_of(run)
    # lint and unit ran in parallel, each as soon as install was done.
    lint, unit, install = jobs["lint"], jobs["unit"], jobs["install"]
    assert ts(lint["startedAt"]) < ts(unit["completedAt"])
    assert ts(unit["startedAt"]) < ts(lint["completedAt"])
    assert ts(lint["startedAt"]) >= ts(install["completedAt"]).replace(microsecond=0)
    assert install["cachedHit"] is False
    assert jobs["integration"]["status"] == "Succeeded"  # branch main

    kubectl(
        "annotate", "pipelinerun", "web-1", "-n", ns, "approve.conveyor.dev/deploy-staging=true"
    )
    run = wait_run(kubectl, ns, "web-1", operator=operator)
    assert run["status"]["phase"] == "Succeeded", run["status"]
    approval = stage_of(run, "deploy-staging")["approval"]
    assert approval["decision"] == "Approved" and approval["by"] and approval["at"]
    assert jobs_of(run)["deploy"]["status"] == "Succeeded"
    assert jobs_of(run)["report"]["status"] == "Succeeded"
    condition = run["status"]["conditions"][0]
    assert (condition["type"], condition["status"]) == ("Succeeded", "True")
    # The resolved spec stays with the run: editing the Pipeline cannot change it.
    assert "conveyor.dev/resolved-spec" in run["metadata"]["annotations"]
    reasons = event_reasons(kubectl, ns, "web-1")
    for reason in ("JobSucceeded", "StageWaiting", "GateApproved", "RunSucceeded"):
        assert reason in reasons, reasons
    sent = wait_until(
        "both notifications",
        lambda: (
            [n for n in notifications.received if n.get("pipelineId") == "web-1"]
            if {"pipeline_gate", "pipeline_complete"}
            <= {n["type"] for n in notifications.received if n.get("pipelineId") == "web-1"}
            else None
        ),
        timeout=30,
    )
    assert all("text" in n for n in sent)
    assert len([n for n in sent if n["type"] == "pipeline_complete"]) == 1

    # The second run (another branch) hits the cache, skips the install and the
    # integration stage; its gate is approved with the CLI's annotation too.
    apply(kubectl, ns, seed_run("web-2", "feature/login"))
    run = wait_run(kubectl, ns, "web-2", ("WaitingApproval",), operator=operator)
    jobs = jobs_of(run)
    assert jobs["install"]["status"] == "Succeeded"
    assert jobs["install"]["cachedHit"] is True
    assert jobs["lint"]["status"] == "Succeeded"  # node_modules restored from the cache
    assert stage_of(run, "integration")["status"] == "Skipped"
    kubectl(
        "annotate", "pipelinerun", "web-2", "-n", ns, "approve.conveyor.dev/deploy-staging=true"
    )
    assert wait_run(kubectl, ns, "web-2", operator=operator)["status"]["phase"] == "Succeeded"


def test_failing_job_skips_dependents_and_runs_finally(
    kubectl: Kubectl, ns: str, operator: Operator
) -> None:
    spec = {
        "defaults": {"image": BUSYBOX_IMAGE, "timeout": 60},
        "stages": [
            {
                "name": "check",
                "jobs": [
                    {"name": "broken", "commands": ["echo failing", "exit 3"]},
                    {"name": "after", "dependsOn": ["broken"], "commands": ["echo never"]},
                ],
            },
            {"name": "later", "jobs": [{"name": "later", "commands": ["echo never"]}]},
        ],
        "finally": [{"name": "report", "commands": ["echo report"]}],
    }
    apply(kubectl, ns, pipeline_run("fail-1", spec))
    run = wait_run(kubectl, ns, "fail-1", operator=operator)
    jobs = jobs_of(run)
    assert run["status"]["phase"] == "Failed"
    assert (jobs["broken"]["status"], jobs["broken"]["exitCode"]) == ("Failed", 3)
    assert (jobs["after"]["status"], jobs["after"]["reason"]) == ("Skipped", "UpstreamFailed")
    assert jobs["later"]["status"] == "Skipped"
    assert jobs["report"]["status"] == "Succeeded"
    assert "JobFailed" in event_reasons(kubectl, ns, "fail-1")


def test_retry_is_a_new_job_and_pull_failures_fail_the_job(
    kubectl: Kubectl, ns: str, operator: Operator
) -> None:
    flaky = {"name": "flaky", "retries": 1, "commands": ['test "$CONVEYOR_ATTEMPT" = 1']}
    ghost = {"name": "ghost", "image": "localhost/conveyor/no-such-image:1", "commands": ["true"],
             "allowFailure": True}  # fmt: skip
    apply(kubectl, ns, pipeline_run("retry-1", simple([flaky, ghost])))
    run = wait_run(kubectl, ns, "retry-1", operator=operator)
    jobs = jobs_of(run)
    assert (jobs["flaky"]["status"], jobs["flaky"]["attempt"]) == ("Succeeded", 1)
    assert jobs["ghost"]["status"] == "Failed"
    assert jobs["ghost"]["reason"] in ("AllowedFailure", "ErrImageNeverPull")
    names = sorted(
        j["metadata"]["annotations"]["conveyor.dev/job-name"] for j in k8s_jobs(kubectl, ns)
    )
    assert names == ["flaky", "flaky", "ghost"]
    assert run["status"]["phase"] == "Succeeded"


def test_rejected_gate(kubectl: Kubectl, ns: str, operator: Operator) -> None:
    spec = {
        "defaults": {"image": BUSYBOX_IMAGE},
        "stages": [
            {"name": "build", "jobs": [{"name": "build", "commands": ["echo build"]}]},
            {"name": "deploy", "gate": {"approvers": ["anna"]},
             "jobs": [{"name": "deploy", "commands": ["echo deploy"]}]},
        ],
    }  # fmt: skip
    apply(kubectl, ns, pipeline_run("gate-1", spec))
    wait_run(kubectl, ns, "gate-1", ("WaitingApproval",), operator=operator)
    kubectl("annotate", "pipelinerun", "gate-1", "-n", ns, "reject.conveyor.dev/deploy=not today")
    run = wait_run(kubectl, ns, "gate-1", operator=operator)
    assert run["status"]["phase"] == "Failed"
    approval = stage_of(run, "deploy")["approval"]
    assert (approval["decision"], approval["message"]) == ("Rejected", "not today")
    assert jobs_of(run)["deploy"]["status"] == "Skipped"
    assert "GateRejected" in event_reasons(kubectl, ns, "gate-1")


def test_timed_out_job(kubectl: Kubectl, ns: str, operator: Operator) -> None:
    apply(
        kubectl,
        ns,
        pipeline_run("slow-1", simple([{"name": "slow", "timeout": 3, "commands": ["sleep 60"]}])),
    )
    run = wait_run(kubectl, ns, "slow-1", operator=operator)
    slow = jobs_of(run)["slow"]
    assert (run["status"]["phase"], slow["status"], slow["reason"]) == (
        "Failed",
        "Failed",
        "DeadlineExceeded",
    )
    # The Job is kept (its observation is the run's memory), and it was not retried.
    time.sleep(3)
    assert len(k8s_jobs(kubectl, ns)) == 1
    assert get_run(kubectl, ns, "slow-1")["status"]["phase"] == "Failed"


def test_cancel(kubectl: Kubectl, ns: str, operator: Operator) -> None:
    apply(
        kubectl, ns, pipeline_run("cancel-1", simple([{"name": "long", "commands": ["sleep 120"]}]))
    )
    wait_until(
        "the job to run",
        lambda: (
            jobs_of(get_run(kubectl, ns, "cancel-1")).get("long", {}).get("status") == "Running"
            if (get_run(kubectl, ns, "cancel-1").get("status") or {}).get("stages")
            else False
        ),
        timeout=60,
    )
    kubectl("annotate", "pipelinerun", "cancel-1", "-n", ns, "conveyor.dev/cancel=true")
    run = wait_run(kubectl, ns, "cancel-1", operator=operator, timeout=30)
    assert run["status"]["phase"] == "Cancelled"
    assert jobs_of(run)["long"]["reason"] == "Cancelled"
    wait_until("the running Job to be deleted", lambda: not k8s_jobs(kubectl, ns), timeout=30)


def test_invalid_run_fails_and_others_still_run(
    kubectl: Kubectl, ns: str, operator: Operator
) -> None:
    bad = simple(
        [{"name": "a", "dependsOn": ["nope"], "commands": ["true"]}, {"name": "B_", "commands": []}]
    )
    apply(kubectl, ns, pipeline_run("bad-1", bad))
    apply(kubectl, ns, pipeline_run("good-1", simple([{"name": "a", "commands": ["echo fine"]}])))
    run = wait_run(kubectl, ns, "bad-1", operator=operator)
    condition = run["status"]["conditions"][0]
    assert (run["status"]["phase"], condition["reason"]) == ("Failed", "InvalidSpec")
    assert "spec.pipelineSpec.stages[0].jobs[0].dependsOn[0]" in condition["message"]
    assert "spec.pipelineSpec.stages[0].jobs[1].commands" in condition["message"]
    assert "InvalidSpec" in event_reasons(kubectl, ns, "bad-1")
    assert wait_run(kubectl, ns, "good-1", operator=operator)["status"]["phase"] == "Succeeded"
    missing = """
apiVersion: conveyor.dev/v1alpha1
kind: PipelineRun
metadata: {name: orphan-1}
spec: {pipelineRef: {name: does-not-exist}}
"""
    apply(kubectl, ns, missing)
    assert wait_run(kubectl, ns, "orphan-1", ("Pending",), operator=operator)


def test_trigger_mismatch_skips_the_run(kubectl: Kubectl, ns: str, operator: Operator) -> None:
    spec = simple([{"name": "a", "commands": ["true"]}], trigger={"branches": ["main"]})
    apply(kubectl, ns, pipeline_run("skip-1", spec, {"branch": "dev", "event": "push"}))
    run = wait_run(kubectl, ns, "skip-1", operator=operator)
    assert run["status"]["phase"] == "Skipped"
    assert "dev" in run["status"]["conditions"][0]["message"]
    assert k8s_jobs(kubectl, ns) == []


def test_own_operator_killed_mid_run_resumes(
    kubectl: Kubectl, ns: str, own_operator: Operator
) -> None:
    """SIGKILL the operator twice while jobs run: the run completes, one Job per attempt."""
    jobs = [{"name": "a", "commands": ["sleep 2"]}]
    jobs += [{"name": f"b{i}", "dependsOn": ["a"], "commands": ["sleep 2"]} for i in range(4)]
    jobs += [{"name": "c", "dependsOn": [f"b{i}" for i in range(4)], "commands": ["sleep 2"]}]
    jobs += [
        {
            "name": "d",
            "dependsOn": ["c"],
            "retries": 1,
            "commands": ['test "$CONVEYOR_ATTEMPT" = 1'],
        }
    ]
    own_operator.start()
    apply(kubectl, ns, pipeline_run("kill-1", simple(jobs)))

    def started(name: str) -> bool:
        status = get_run(kubectl, ns, "kill-1").get("status") or {}
        return any(
            j["name"] == name and j["status"] in ("Running", "Succeeded")
            for s in status.get("stages", []) for j in s["jobs"]
        )  # fmt: skip

    wait_until("job a to start", lambda: started("a"), timeout=60)
    own_operator.kill()
    time.sleep(3)  # a finishes while nobody watches
    own_operator.start()
    wait_until("the fan-out to start", lambda: started("b0"), timeout=60)
    own_operator.kill()
    own_operator.start()
    run = wait_run(kubectl, ns, "kill-1", operator=own_operator, timeout=120)
    assert run["status"]["phase"] == "Succeeded", run["status"]
    counts: dict[tuple[str, str], int] = {}
    for job in k8s_jobs(kubectl, ns):
        key = (
            job["metadata"]["annotations"]["conveyor.dev/job-name"],
            job["metadata"]["labels"]["conveyor.dev/attempt"],
        )
        counts[key] = counts.get(key, 0) + 1
    assert set(counts.values()) == {1}, counts
    assert len(counts) == 8  # a, b0-b3, c, d twice (a retry is a new attempt)


@pytest.fixture
def git_repo(tmp_path: Path) -> Iterator[str]:
    """A git repository served over HTTP ("dumb" protocol) from this host, which is the node."""
    work = tmp_path / "src"
    work.mkdir()
    (work / "hello.txt").write_text("hello from git\n")
    (work / "package-lock.json").write_text('{"lockfileVersion": 3}\n')
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", str(work)], check=True)
    subprocess.run([*git, "-C", str(work), "add", "."], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-q", "-m", "first"], check=True)
    served = tmp_path / "served"
    served.mkdir()
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(work), str(served / "repo.git")], check=True
    )
    subprocess.run(["git", "-C", str(served / "repo.git"), "update-server-info"], check=True)
    handler = functools.partial(QuietHandler, directory=str(served))
    server = ThreadingHTTPServer((NODE_IP, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{NODE_IP}:{server.server_address[1]}/repo.git"
    server.shutdown()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_source_checkout_cli_and_artifact_expiry(
    kubectl: Kubectl, ns: str, cache_claim: str, cache_root: Path, operator: Operator, git_repo: str
) -> None:
    spec = {
        "defaults": {"image": BUSYBOX_IMAGE, "timeout": 60},
        "cache": {"claimName": cache_claim},
        "stages": [
            {
                "name": "build",
                "jobs": [
                    {"name": "build", "commands": ["cat hello.txt", "mkdir -p out && cp hello.txt out/"],
                     "artifacts": {"paths": ["out/"], "expireIn": "3s"}},
                    {"name": "use", "dependsOn": ["build"], "commands": ["cat out/hello.txt"]},
                ],
            },
            {"name": "ship", "gate": {"approvers": ["anna"]}, "jobs": [{"name": "ship", "commands": ["true"]}]},
        ],
    }  # fmt: skip
    source = {"git": {"url": git_repo, "revision": "HEAD"}}
    apply(kubectl, ns, pipeline_run("src-1", spec, source=source))
    wait_run(kubectl, ns, "src-1", ("WaitingApproval",), operator=operator)
    env = dict(os.environ)
    conveyor = [sys.executable, "-m", "conveyor.cli.main"]
    logs = subprocess.run(
        [*conveyor, "logs", "-n", ns, "src-1", "use"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert logs.returncode == 0, logs.stderr
    assert "$ cat out/hello.txt\nhello from git" in logs.stdout
    assert (cache_root / "artifacts" / "src-1" / "build" / "out" / "hello.txt").is_file()
    status = subprocess.run(
        [*conveyor, "status", "-n", ns, "src-1"], capture_output=True, text=True, check=False
    )
    assert "WaitingApproval" in status.stdout and "ship" in status.stdout
    wrong = subprocess.run(
        [*conveyor, "approve", "-n", ns, "src-1", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert wrong.returncode == 1 and "no stage 'nope'" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    subprocess.run([*conveyor, "reject", "-n", ns, "src-1", "ship", "-m", "not today"], check=True)
    run = wait_run(kubectl, ns, "src-1", operator=operator)
    approval = stage_of(run, "ship")["approval"]
    assert (approval["decision"], approval["message"]) == ("Rejected", "not today")
    # expireIn after the run ended, a cleanup Job removes the run's artifacts.
    wait_until(
        "the artifacts to expire",
        lambda: not (cache_root / "artifacts" / "src-1").exists(),
        timeout=60,
    )


def test_run_timeout_stops_running_jobs(kubectl: Kubectl, ns: str, operator: Operator) -> None:
    spec = simple([{"name": "long", "commands": ["sleep 120"]}])
    apply(kubectl, ns, pipeline_run("rto-1", spec, timeout=4))
    run = wait_run(kubectl, ns, "rto-1", operator=operator, timeout=60)
    assert run["status"]["phase"] == "Failed"
    assert jobs_of(run)["long"]["reason"] == "RunTimeout"
    wait_until("the running Job to be deleted", lambda: not k8s_jobs(kubectl, ns), timeout=30)


@pytest.fixture
def webhook_cert(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "webhook.crt", tmp_path / "webhook.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_own_operator_webhook_checks_who_decides(
    kubectl: Kubectl,
    ns: str,
    own_operator: Operator,
    kubeconfig_for: Callable[..., Path],
    webhook_cert: tuple[Path, Path],
) -> None:
    """Only listed approvers, never the run's creator, may decide; who decided is recorded."""
    port = free_port()
    cert, key = webhook_cert
    own_operator.extra_args = [
        "--webhook-url", f"https://127.0.0.1:{port}",
        "--webhook-cert", str(cert), "--webhook-key", str(key),
    ]  # fmt: skip
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "runs", "namespace": ns},
        "rules": [{"apiGroups": ["conveyor.dev"], "resources": ["pipelineruns"],
                   "verbs": ["get", "list", "create", "patch", "update"]}],
    }  # fmt: skip
    kubectl.apply(role)
    for user in ("anna", "eve", "bob"):
        kubectl("create", "rolebinding", f"runs-{user}", "-n", ns, "--role=runs", f"--user={user}")
    anna = kubectl.as_user(kubeconfig_for("anna"))
    eve = kubectl.as_user(kubeconfig_for("eve", "devs"))
    bob = kubectl.as_user(kubeconfig_for("bob", "team-leads"))
    own_operator.start()
    try:
        wait_until(
            "the webhook configuration",
            lambda: (
                "conveyor.dev" in kubectl("get", "validatingwebhookconfigurations", "-o", "name")
            ),
            timeout=60,
        )
        spec = {
            "defaults": {"image": BUSYBOX_IMAGE},
            "stages": [{"name": "deploy", "gate": {"approvers": ["anna", "group:team-leads"]},
                        "jobs": [{"name": "deploy", "commands": ["true"]}]}],
        }  # fmt: skip
        anna("apply", "-n", ns, "-f", "-", input=pipeline_run("gw-1", spec))
        run = wait_run(kubectl, ns, "gw-1", ("WaitingApproval",), operator=own_operator)
        assert run["metadata"]["annotations"]["conveyor.dev/created-by"] == "anna"
        annotate = ("annotate", "pipelinerun", "gw-1", "-n", ns, "approve.conveyor.dev/deploy=true")
        with pytest.raises(KubectlError, match="not an approver"):
            eve(*annotate)
        with pytest.raises(KubectlError, match="created this run"):
            anna(*annotate)
        bob(*annotate)
        run = wait_run(kubectl, ns, "gw-1", operator=own_operator)
        assert run["status"]["phase"] == "Succeeded"
        assert stage_of(run, "deploy")["approval"]["by"] == "bob"
    finally:
        own_operator.stop()
        for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
            kubectl("delete", kind, "conveyor.dev", "--ignore-not-found")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_hello_example_passes_artifacts_through_the_runs_own_store(
    kubectl: Kubectl, ns: str, operator: Operator
) -> None:
    # examples/hello.yaml names no cache claim: the run gets a store claim of its own.
    created = kubectl("create", "-n", ns, "-f", str(EXAMPLES / "hello.yaml"), "-o", "name")
    name = created.strip().split("/")[-1]
    run = wait_run(kubectl, ns, name, operator=operator)
    jobs = jobs_of(run)
    assert run["status"]["phase"] == "Succeeded", jobs
    assert {jobs[j]["status"] for j in ("compile", "package", "notify")} == {"Succeeded"}
    claim = kubectl.json("get", "pvc", f"{name}-store", "-n", ns)
    assert claim["metadata"]["ownerReferences"][0]["name"] == name
    pod = kubectl(
        "get", "pods", "-n", ns, "-l", f"job-name={jobs['package']['jobName']}",
        "-o", "jsonpath={.items[0].metadata.name}",
    )  # fmt: skip
    assert "binary" in kubectl("logs", "-n", ns, pod, "-c", "main")
