"""Smoke tests of the local cluster itself: the things every integration and e2e test relies on."""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import (
    BUSYBOX_IMAGE,
    STORAGE_CLASS,
    TOOLS_IMAGE,
    Kubectl,
    KubectlError,
    busybox_pod,
    wait_pod_finished,
    wait_until,
)

pytestmark = pytest.mark.integration


def test_single_node_is_ready_and_runs_the_pinned_version(kubectl: Kubectl) -> None:
    version = json.loads(kubectl("version", "-o", "json"))["serverVersion"]
    assert version["gitVersion"].startswith("v1.34."), version
    assert (version["major"], version["minor"]) == ("1", "34")

    nodes = kubectl.json("get", "nodes")["items"]
    assert len(nodes) == 1
    conditions = {c["type"]: c["status"] for c in nodes[0]["status"]["conditions"]}
    assert conditions["Ready"] == "True", conditions
    internal = [a["address"] for a in nodes[0]["status"]["addresses"] if a["type"] == "InternalIP"]
    assert internal, nodes[0]["status"]["addresses"]
    assert not ipaddress.ip_address(internal[0]).is_loopback

    classes = kubectl.json("get", "storageclasses")["items"]
    defaults = [
        c["metadata"]["name"]
        for c in classes
        if c["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class")
        == "true"
    ]
    assert defaults == [STORAGE_CLASS]


def test_job_in_busybox_image_completes_and_logs_hello(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "hello"},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {
                                "name": "main",
                                "image": BUSYBOX_IMAGE,
                                "imagePullPolicy": "Never",
                                "command": ["echo", "hello"],
                            }
                        ],
                    }
                },
            },
        },
        namespace,
    )

    def finished() -> dict[str, Any] | None:
        status: dict[str, Any] = kubectl.json("get", "job", "hello", "-n", namespace)["status"]
        return status if status.get("succeeded") or status.get("failed") else None

    status = wait_until("job hello to finish", finished, timeout=120)
    assert status.get("succeeded") == 1, status
    assert kubectl("logs", "job/hello", "-n", namespace) == "hello\n"


def test_pvc_binds_and_a_second_pod_reads_what_the_first_wrote(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "workspace"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "64Mi"}},
            },
        },
        namespace,
    )
    wait_until(
        "pvc workspace to bind",
        lambda: (
            kubectl("get", "pvc", "workspace", "-n", namespace, "-o", "jsonpath={.status.phase}")
            == "Bound"
        ),
        timeout=60,
    )
    pvc = kubectl.json("get", "pvc", "workspace", "-n", namespace)
    assert pvc["spec"]["storageClassName"] == STORAGE_CLASS  # the default class was applied

    token = secrets.token_hex(8)
    volume = {
        "volumes": [{"name": "ws", "persistentVolumeClaim": {"claimName": "workspace"}}],
        "container": {"volumeMounts": [{"name": "ws", "mountPath": "/data"}]},
    }
    kubectl.apply(busybox_pod("writer", f"echo {token} > /data/msg", **volume), namespace)
    assert wait_pod_finished(kubectl, namespace, "writer") == "Succeeded"

    kubectl.apply(busybox_pod("reader", "cat /data/msg", **volume), namespace)
    assert wait_pod_finished(kubectl, namespace, "reader") == "Succeeded"
    assert kubectl("logs", "reader", "-n", namespace).strip() == token

    # The data lives in the bound PersistentVolume, not in anything pod-local.
    pv = kubectl.json("get", "pv", pvc["spec"]["volumeName"])
    assert (Path(pv["spec"]["hostPath"]["path"]) / "msg").read_text().strip() == token


def test_tools_image_has_git_python_and_coreutils(kubectl: Kubectl, namespace: str) -> None:
    script = (
        "git --version && python3 -c 'import sys; print(\"python\", sys.version_info[0])' && "
        "tar --version | head -n 1 && sha256sum /dev/null | cut -c1-8"
    )
    pod = busybox_pod("tools", script, container={"image": TOOLS_IMAGE})
    kubectl.apply(pod, namespace)
    phase = wait_pod_finished(kubectl, namespace, "tools")
    out = kubectl("logs", "tools", "-n", namespace)
    assert phase == "Succeeded", out
    lines = out.splitlines()
    assert lines[0].startswith("git version "), out
    assert lines[1] == "python 3", out
    assert "GNU tar" in lines[2], out
    assert lines[3] == "e3b0c442", out  # sha256 of empty input, from coreutils


def test_kubeconfig_for_authenticates_user_and_groups_under_rbac(
    kubectl: Kubectl, kubeconfig_for: Callable[..., Path], namespace: str
) -> None:
    alice = kubectl.as_user(kubeconfig_for("it-alice", "conveyor-approvers"))
    who = json.loads(alice("auth", "whoami", "-o", "json"))["status"]["userInfo"]
    assert who["username"] == "it-alice"
    assert "conveyor-approvers" in who["groups"]
    assert "system:masters" not in who["groups"]

    with pytest.raises(KubectlError) as denied:
        alice("get", "configmaps", "-n", namespace)
    assert "forbidden" in denied.value.stderr.lower()

    kubectl(
        "create", "rolebinding", "approvers-view", "--clusterrole=view",
        "--group=conveyor-approvers", "-n", namespace,
    )  # fmt: skip

    def allowed() -> bool:
        try:
            alice("get", "configmaps", "-n", namespace)
        except KubectlError:
            return False
        return True

    wait_until("the rolebinding to take effect", allowed, timeout=30)
