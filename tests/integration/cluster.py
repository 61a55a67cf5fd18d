"""The local Kubernetes cluster (hack/cluster.sh) for integration and e2e tests.

Fixtures live here rather than only in conftest.py so other test packages can import them:
`from tests.integration.cluster import kubeconfig, kubectl, namespace, kubeconfig_for`.

The first test that needs the cluster brings it up (`hack/cluster.sh up`) unless it already
runs; it is left running afterwards so the next session starts in seconds (`hack/test.sh`
stops a cluster that it started itself). Images are local, so pods use `imagePullPolicy: Never`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO_ROOT / "hack" / "cluster.sh"

BUSYBOX_IMAGE = "localhost/conveyor/busybox:1"
TOOLS_IMAGE = "localhost/conveyor/tools:1"
STORAGE_CLASS = "conveyor-local"


class KubectlError(RuntimeError):
    """kubectl exited non-zero; carries its arguments, exit code and stderr."""

    def __init__(self, args: tuple[str, ...], returncode: int, stderr: str) -> None:
        super().__init__(f"kubectl {shlex.join(args)} exited {returncode}: {stderr.strip()}")
        self.args_ = args
        self.returncode = returncode
        self.stderr = stderr


@dataclass(frozen=True)
class Kubectl:
    """The cluster's own kubectl bound to one kubeconfig: `kubectl("get", "pods")` -> stdout."""

    binary: Path
    kubeconfig: Path

    def __call__(self, *args: str, input: str | None = None, timeout: float = 120.0) -> str:
        proc = subprocess.run(
            [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise KubectlError(args, proc.returncode, proc.stderr)
        return proc.stdout

    def json(self, *args: str) -> Any:
        """`kubectl ARGS -o json`, decoded."""
        return json.loads(self(*args, "-o", "json"))

    def apply(self, manifest: dict[str, Any] | str, namespace: str | None = None) -> str:
        """Apply one object (a dict) or a YAML/JSON document (a string)."""
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        ns = ("-n", namespace) if namespace else ()
        return self("apply", *ns, "-f", "-", input=text)

    def as_user(self, kubeconfig: Path) -> Kubectl:
        """The same kubectl with another kubeconfig (see the `kubeconfig_for` fixture)."""
        return replace(self, kubeconfig=kubeconfig)


def cluster_sh(*args: str, capture: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(CLUSTER_SH), *args],
        stdin=subprocess.DEVNULL,
        capture_output=capture,
        text=True,
        check=False,
    )


def cluster_env() -> dict[str, str]:
    """The variables `hack/cluster.sh env` exports (KUBECONFIG, CONVEYOR_KUBECTL, ...)."""
    proc = cluster_sh("env")
    if proc.returncode != 0:
        raise RuntimeError(f"hack/cluster.sh env failed: {proc.stderr}")
    env: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            env[name] = value
    return env


def wait_until(
    what: str, check: Callable[[], Any], timeout: float = 120.0, interval: float = 0.5
) -> Any:
    """Poll `check` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_pod_finished(kubectl: Kubectl, namespace: str, name: str, timeout: float = 120.0) -> str:
    """Wait until the pod has Succeeded or Failed and return that phase."""

    def phase() -> str | None:
        value = kubectl("get", "pod", name, "-n", namespace, "-o", "jsonpath={.status.phase}")
        return value if value in ("Succeeded", "Failed") else None

    try:
        return str(wait_until(f"pod {namespace}/{name} to finish", phase, timeout))
    except pytest.fail.Exception:
        details = kubectl("describe", "pod", name, "-n", namespace)
        pytest.fail(f"pod {namespace}/{name} did not finish in {timeout:.0f}s:\n{details}")


def busybox_pod(name: str, script: str, **spec: Any) -> dict[str, Any]:
    """A run-once pod running `sh -c script` in the local busybox image."""
    container: dict[str, Any] = {
        "name": "main",
        "image": BUSYBOX_IMAGE,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", script],
    }
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[Path]:
    """Path of the admin (system:masters) kubeconfig; brings the cluster up if it is not.

    Also exports KUBECONFIG and puts the cluster's kubectl first on PATH for this process, so
    Kubernetes clients created by the code under test find the cluster.
    """
    if cluster_sh("status").returncode != 0:
        # Output goes to the test log; the first run on a machine builds Kubernetes.
        up = cluster_sh("up", capture=False)
        if up.returncode != 0:
            pytest.fail(f"hack/cluster.sh up failed (exit {up.returncode})")
    env = cluster_env()
    path = Path(env["KUBECONFIG"])
    assert path.is_file(), f"no admin kubeconfig at {path}"
    os.environ["KUBECONFIG"] = str(path)
    bin_dir = str(Path(env["CONVEYOR_KUBECTL"]).parent)
    os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    yield path


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> Kubectl:
    """Callable running the cluster's kubectl as cluster-admin: returns stdout, raises
    KubectlError (with stderr) on a non-zero exit."""
    return Kubectl(Path(cluster_env()["CONVEYOR_KUBECTL"]), kubeconfig)


@pytest.fixture(scope="session")
def kubeconfig_for(kubeconfig: Path) -> Callable[..., Path]:
    """`kubeconfig_for("alice", "team-a")` -> path of a kubeconfig authenticating as user
    alice in group team-a (a client certificate signed by the cluster CA). The user has no
    permissions until a test binds some with RBAC."""

    def issue(user: str, *groups: str) -> Path:
        proc = cluster_sh("kubeconfig-for", user, *groups)
        if proc.returncode != 0:
            raise RuntimeError(f"kubeconfig-for {user} failed: {proc.stderr}")
        return Path(proc.stdout.strip().splitlines()[-1])

    return issue


@contextmanager
def temporary_namespace(
    kubectl: Kubectl, prefix: str, test_name: str, labels: tuple[str, ...] = ()
) -> Iterator[str]:
    """A fresh namespace named after a test, deleted (with everything in it) afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    name = f"{prefix}{slug}-{secrets.token_hex(3)}"
    kubectl("create", "namespace", name)
    if labels:
        kubectl("label", "namespace", name, *labels)
    # Pods are rejected until the service-account controller has made `default`.
    wait_until(
        f"service account default in {name}",
        lambda: kubectl("get", "serviceaccounts", "-n", name, "-o", "name").strip(),
        timeout=60,
    )
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


@pytest.fixture
def namespace(kubectl: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test, deleted (with everything in it) afterwards."""
    with temporary_namespace(kubectl, "it-", request.node.name) as name:
        yield name
