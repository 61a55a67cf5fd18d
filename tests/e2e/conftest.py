"""Fixtures for end-to-end tests: the real cluster, CRDs applied, and `conveyor operator`
running on the host as a subprocess (the node has no kube-proxy, so not in a pod).

One session operator serves every e2e namespace except those of tests that run (and kill)
their own operator; those tests use the `own_operator` fixture.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.cluster import (
    REPO_ROOT,
    Kubectl,
    kubeconfig,
    kubeconfig_for,
    kubectl,
    temporary_namespace,
    wait_until,
)

__all__ = ["kubeconfig", "kubeconfig_for", "kubectl"]

# Namespaces of these tests (other suites' `it-*` namespaces are not this operator's business).
NAMESPACE_PREFIX = "e2e-"
OWN_OPERATOR_PREFIX = "e2e-test-own-operator"
TERMINAL = ("Succeeded", "Failed", "Cancelled", "Skipped")


class Operator:
    """`conveyor operator` as a child process; its log is kept for failing tests."""

    def __init__(self, log_path: Path, namespaces: list[str], notify_url: str | None) -> None:
        self.log_path = log_path
        self.namespaces = namespaces
        self.notify_url = notify_url
        self.extra_args: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            sys.executable,
            "-m",
            "conveyor.cli.main",
            "operator",
            "--image-pull-policy",
            "Never",
        ]
        for pattern in self.namespaces:
            args += ["--namespace", pattern]
        args += self.extra_args
        env = dict(os.environ)
        if self.notify_url:
            env["CONVEYOR_NOTIFY_URL"] = self.notify_url
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT,
            start_new_session=True,
        )  # fmt: skip
        log.close()

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Sink:
    """A tiny HTTP server on the host collecting notification POSTs."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="session")
def notifications() -> Iterator[Sink]:
    sink = Sink()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            sink.received.append(json.loads(self.rfile.read(length) or b"{}"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield sink
    server.shutdown()


@pytest.fixture(scope="session")
def crds(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", str(REPO_ROOT / "crds"))
    for crd in ("pipelines.conveyor.dev", "pipelineruns.conveyor.dev"):
        kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")


@pytest.fixture(scope="session")
def operator(
    crds: None, kubeconfig: Path, notifications: Sink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    op = Operator(log, [f"{NAMESPACE_PREFIX}*", f"!{OWN_OPERATOR_PREFIX}*"], notifications.url)
    op.start()
    yield op
    op.stop()


@pytest.fixture
def ns(kubectl: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test, enforcing the restricted Pod Security
    Standard on job pods; deleted with everything in it afterwards."""
    restricted = (
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    )
    with temporary_namespace(kubectl, NAMESPACE_PREFIX, request.node.name, restricted) as name:
        yield name


@pytest.fixture
def own_operator(crds: None, ns: str, tmp_path: Path) -> Iterator[Operator]:
    """An operator for this test's namespace only (tests named test_own_operator_*)."""
    assert ns.startswith(OWN_OPERATOR_PREFIX), "name the test test_own_operator_..."
    op = Operator(tmp_path / "operator.log", [ns], None)
    yield op
    op.stop()


@pytest.fixture
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The host directory behind `cache_claim` (the node is this machine)."""
    root = tmp_path_factory.mktemp("cache")
    root.chmod(0o777)
    return root


@pytest.fixture
def cache_claim(kubectl: Kubectl, ns: str, cache_root: Path) -> Iterator[str]:
    """A PVC named `conveyor-cache` bound to a fresh host directory writable by the job uid."""
    root = cache_root
    pv = f"{ns}-cache"
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": pv},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": str(root), "type": "Directory"},
            },
        }
    )
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "conveyor-cache", "namespace": ns},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "",
                "volumeName": pv,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )
    yield "conveyor-cache"
    kubectl("delete", "pvc", "conveyor-cache", "-n", ns, "--wait=false", "--ignore-not-found")
    kubectl("delete", "pv", pv, "--wait=false", "--ignore-not-found")


# --- helpers -------------------------------------------------------------------------------------


def apply(kubectl: Kubectl, ns: str, text: str) -> None:
    kubectl("apply", "-n", ns, "-f", "-", input=text)


def pipeline_run(
    name: str, spec: dict[str, Any], context: dict[str, Any] | None = None, **extra: Any
) -> str:
    """YAML of a PipelineRun with an inline pipeline spec."""
    body: dict[str, Any] = {
        "pipelineSpec": spec,
        "context": context or {"branch": "main", "event": "push"},
    }
    body.update(extra)
    return yaml.safe_dump(
        {
            "apiVersion": "conveyor.dev/v1alpha1",
            "kind": "PipelineRun",
            "metadata": {"name": name},
            "spec": body,
        }
    )


def get_run(kubectl: Kubectl, ns: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = kubectl.json("get", "pipelinerun", name, "-n", ns)
    return result


def wait_run(
    kubectl: Kubectl,
    ns: str,
    name: str,
    phases: tuple[str, ...] = TERMINAL,
    timeout: float = 120.0,
    operator: Operator | None = None,
) -> dict[str, Any]:
    """Wait until the run's phase is one of `phases`; return the run."""

    def check() -> dict[str, Any] | None:
        run = get_run(kubectl, ns, name)
        return run if (run.get("status") or {}).get("phase") in phases else None

    try:
        result: dict[str, Any] = wait_until(f"run {name} to reach {phases}", check, timeout, 0.5)
    except pytest.fail.Exception:
        run = get_run(kubectl, ns, name)
        log = operator.tail() if operator else ""
        pytest.fail(
            f"run {name} did not reach {phases} in {timeout:.0f}s; status:\n"
            f"{yaml.safe_dump(run.get('status'))}\njobs:\n{kubectl('get', 'jobs,pods', '-n', ns)}\n{log}"
        )
    return result


def jobs_of(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["name"]: job for stage in run["status"]["stages"] for job in stage["jobs"]}


def stage_of(run: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in run["status"]["stages"] if s["name"] == name)


def k8s_jobs(kubectl: Kubectl, ns: str) -> list[dict[str, Any]]:
    return list(kubectl.json("get", "jobs", "-n", ns)["items"])


def event_reasons(kubectl: Kubectl, ns: str, name: str) -> list[str]:
    events = kubectl.json(
        "get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}"
    )
    return [e["reason"] for e in events["items"]]


Waiter = Callable[..., dict[str, Any]]
