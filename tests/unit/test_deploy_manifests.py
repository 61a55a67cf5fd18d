"""The deployable manifests stay in step with the generated CRDs and deploy one replica."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("copy", ["manifests/crds", "charts/conveyor/crds"])
def test_crd_copies_match_the_generated_crds(copy: str) -> None:
    for generated in sorted((ROOT / "crds").glob("*.yaml")):
        copied = ROOT / copy / generated.name
        assert copied.read_text() == generated.read_text(), f"run: cp crds/*.yaml {copy}/"


def test_one_replica_recreated() -> None:
    deployment = yaml.safe_load((ROOT / "manifests" / "deployment.yaml").read_text())
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
