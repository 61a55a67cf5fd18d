"""The generated CRDs on a real API server: accepted, printer columns, status kept whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.core.planner import GateDecision
from tests.integration.cluster import Kubectl
from tests.unit.sim import T0, Outcome, simulate, spec_of

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def crds(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", str(ROOT / "crds"))
    for name in ("pipelines.conveyor.dev", "pipelineruns.conveyor.dev"):
        kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")


def _without_nulls(value: Any) -> Any:
    # A merge patch drops null fields; everything else must come back unchanged.
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def test_examples_are_accepted_and_status_round_trips(
    crds: None, kubectl: Kubectl, namespace: str
) -> None:
    kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples/web/pipeline.yaml"))
    created = kubectl(
        "create", "-n", namespace, "-f", str(ROOT / "examples/hello.yaml"), "-o", "name"
    )
    run_name = created.strip().split("/")[-1]

    spec = spec_of(yaml.safe_load((ROOT / "examples/web/pipeline.yaml").read_text())["spec"])
    sim = simulate(
        spec,
        outcomes={"lint": Outcome(exit_codes=[1])},
        decisions={"deploy-staging": GateDecision("Approved", by="anna", at=T0)},
    )
    status = sim.final.status.model_dump(mode="json", by_alias=True)
    # A server-side dry run shows what the API server would store (after pruning) without
    # storing it, so an operator watching the cluster cannot interfere.
    back = kubectl.json(
        "patch",
        "plr",
        run_name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "--dry-run=server",
        "-p",
        json.dumps({"status": status}),
        "-o",
        "json",
    )["status"]
    assert back == _without_nulls(status)

    columns = kubectl.json("get", "crd", "pipelineruns.conveyor.dev")["spec"]["versions"][0]
    assert [c["name"] for c in columns["additionalPrinterColumns"]] == [
        "Phase",
        "Stage",
        "Age",
        "Duration",
    ]


def test_api_server_rejects_unknown_fields_in_spec(
    crds: None, kubectl: Kubectl, namespace: str
) -> None:
    bad = {
        "apiVersion": "conveyor.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "bad"},
        "spec": {
            "stages": [{"name": "s", "jobs": [{"name": "a", "commands": ["x"], "retries": "many"}]}]
        },
    }
    with pytest.raises(Exception, match="retries"):
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(bad))
