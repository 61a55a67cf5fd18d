"""The operator as users deploy it: its image, `manifests/` (RBAC, Deployment) in the cluster.

The image is built from this checkout (`hack/operator-image.sh`) and deployed with
`hack/cluster/operator/`, the local overlay of `manifests/`; it serves namespaces named
`demo*`, which no other operator in these tests touches, so a run there that succeeds was run
by the pod, with the RBAC of `manifests/rbac.yaml`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import jobs_of, wait_run
from tests.integration.cluster import REPO_ROOT, Kubectl, temporary_namespace

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
OVERLAY = REPO_ROOT / "hack" / "cluster" / "operator"


@pytest.fixture(scope="module")
def deployed_operator(kubectl: Kubectl) -> Iterator[None]:
    build = subprocess.run(
        [str(REPO_ROOT / "hack" / "operator-image.sh")],
        capture_output=True, text=True, timeout=500, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    # The namespace of an earlier deployment may still be going away.
    kubectl("wait", "--for=delete", "namespace/conveyor-system", "--timeout=180s", timeout=200)
    kubectl("apply", "-k", str(OVERLAY))
    try:
        # A restart picks up an image rebuilt under the same tag.
        kubectl("rollout", "restart", "deployment/conveyor-operator", "-n", "conveyor-system")
        kubectl(
            "rollout", "status", "deployment/conveyor-operator", "-n", "conveyor-system",
            "--timeout=180s", timeout=200,
        )  # fmt: skip
        yield
    finally:
        kubectl("delete", "namespace", "conveyor-system", "--wait=false", "--ignore-not-found")


def test_deployed_operator_runs_a_pipeline(
    deployed_operator: None, kubectl: Kubectl, request: pytest.FixtureRequest
) -> None:
    with temporary_namespace(kubectl, "demo-", request.node.name) as ns:
        created = kubectl(
            "create", "-n", ns, "-f", str(REPO_ROOT / "examples/hello.yaml"), "-o", "name"
        )
        name = created.strip().split("/")[-1]
        run = wait_run(kubectl, ns, name, timeout=180)
        assert run["status"]["phase"] == "Succeeded", jobs_of(run)
        assert jobs_of(run)["package"]["status"] == "Succeeded"
        pods = kubectl.json("get", "pods", "-n", "conveyor-system")["items"]
        assert [p["status"]["phase"] for p in pods] == ["Running"]
        assert pods[0]["spec"]["securityContext"]["runAsNonRoot"] is True
