"""`conveyor validate`, `conveyor graph` and `conveyor crds`, run as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.cli.files import read_pipeline_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(ROOT.glob("examples/**/*.yaml"))


def conveyor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_validates(path: Path) -> None:
    parsed = read_pipeline_file(str(path))
    assert parsed.problems == []
    assert parsed.pipelines or parsed.runs


def test_seed_example_has_the_seed_shape() -> None:
    parsed = read_pipeline_file(str(ROOT / "examples/web/pipeline.yaml"))
    spec = parsed.pipelines[0].spec
    stages = {s.name: s for s in spec.stages}
    assert stages["integration"].condition
    assert stages["deploy-staging"].gate is not None
    jobs = {j.name: j for j in stages["check"].jobs}
    assert (
        jobs["install"].cache is not None
        and "hashFiles('package-lock.json')" in jobs["install"].cache.key
    )
    assert jobs["e2e"].matrix == {"browser": ["chromium", "firefox", "webkit", "edge"]}
    assert jobs["lint"].depends_on == jobs["unit"].depends_on == ["install"]


def test_validate_ok_and_invalid(tmp_path: Path) -> None:
    ok = conveyor("validate", "examples/web/pipeline.yaml", "examples/hello.yaml")
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: Pipeline\napiVersion: conveyor.dev/v1alpha1\nmetadata: {name: p}\n"
        "spec:\n  stages:\n  - name: s\n    jobs:\n    - {name: a, dependsOn: [b], commands: [x]}\n"
        "    - {name: b, dependsOn: [a], commands: [x], timeout: 5q}\n"
    )
    result = conveyor("validate", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert f"{bad}: spec.stages[0].jobs[1].timeout: invalid duration '5q'" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("stages: [oops", "not valid YAML"),
        ("kind: Deployment\n", "kind: expected one of Pipeline, PipelineRun"),
        ("", "holds no Pipeline"),
    ],
)
def test_validate_reports_unreadable_input(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    result = conveyor("validate", str(bad), str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert message in result.stderr
    assert "cannot read the file" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("fmt", "needle"), [("mermaid", "j_install --> j_lint"), ("dot", "j_install -> j_lint;")]
)
def test_graph(fmt: str, needle: str) -> None:
    result = conveyor("graph", "examples/web/pipeline.yaml", "--format", fmt)
    assert result.returncode == 0, result.stderr
    assert needle in result.stdout
    assert "e2e[browser=webkit]" in result.stdout
