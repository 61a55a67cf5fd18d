"""The committed CRDs are exactly what the models generate, and structurally valid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.cli.crds import render_all

CRDS = Path(__file__).resolve().parents[2] / "crds"


@pytest.mark.parametrize("name", sorted(render_all()))
def test_committed_crd_matches_the_models(name: str) -> None:
    committed = (CRDS / name).read_text()
    assert committed == render_all()[name], (
        f"crds/{name} is out of date: run `conveyor crds --write crds/` and commit the result"
    )


def _walk(node: Any, path: str = "") -> list[str]:
    bad: list[str] = []
    if isinstance(node, dict):
        for key in ("$ref", "anyOf", "oneOf", "allOf", "$defs"):
            if key in node:
                bad.append(f"{path}: {key}")
        if "properties" in node and node.get("type") != "object":
            bad.append(f"{path}: properties without type object")
        if (
            "type" not in node
            and "x-kubernetes-int-or-string" not in node
            and "x-kubernetes-preserve-unknown-fields" not in node
            and path.rsplit(".", maxsplit=1)[-1] not in ("properties",)
        ):
            bad.append(f"{path}: no type")
        for key, value in node.items():
            if key == "properties":
                for prop, schema in value.items():
                    bad.extend(_walk(schema, f"{path}.{prop}"))
            elif key in ("items", "additionalProperties") and isinstance(value, dict):
                bad.extend(_walk(value, f"{path}[{key}]"))
    return bad


@pytest.mark.parametrize("name", sorted(render_all()))
def test_crd_schema_is_structural(name: str) -> None:
    crd = yaml.safe_load(render_all()[name])
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []


def test_pipelinerun_has_status_subresource_and_columns() -> None:
    crd = yaml.safe_load(render_all()["conveyor.dev_pipelineruns.yaml"])
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns == {
        "Phase": ".status.phase",
        "Stage": ".status.currentStage",
        "Age": ".metadata.creationTimestamp",
        "Duration": ".status.durationSeconds",
    }
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    job = status["stages"]["items"]["properties"]["jobs"]["items"]["properties"]
    assert {"cachedHit", "exitCode", "jobName", "durationSeconds"} <= set(job)
