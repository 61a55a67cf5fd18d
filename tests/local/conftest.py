"""Helpers for local runner tests: write a pipeline, run `conveyor run` on it, read the report.

Jobs are real `sh` processes; nothing here needs a cluster. Most tests call the CLI in this
process (fast); tests about signals and terminals run it as a child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from conveyor.cli.main import main
from conveyor.core.models import RunStatus


@dataclass
class Result:
    code: int
    report: dict[str, Any]
    out: str
    err: str
    workdir: Path

    def job(self, name: str) -> dict[str, Any]:
        for stage in self.report["stages"]:
            for job in stage["jobs"]:
                if job["name"] == name:
                    return dict(job)
        raise KeyError(name)

    def stage(self, name: str) -> dict[str, Any]:
        return next(dict(s) for s in self.report["stages"] if s["name"] == name)

    def times(self, name: str) -> tuple[datetime, datetime]:
        job = self.job(name)
        return parse_time(job["startedAt"]), parse_time(job["completedAt"])

    def log(self, name: str, attempt: int = 0) -> str:
        run_dir = next(p for p in self.workdir.iterdir() if p.is_dir())
        return (run_dir / "logs" / f"{name}.{attempt}.log").read_text()


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def pipeline_yaml(body: str) -> str:
    """A Pipeline document around `body` (the spec's YAML, dedented)."""
    spec = textwrap.indent(textwrap.dedent(body).strip(), "  ")
    return (
        f"apiVersion: conveyor.dev/v1alpha1\nkind: Pipeline\nmetadata: {{name: t}}\nspec:\n{spec}\n"
    )


RunPipeline = Callable[..., Result]


@pytest.fixture
def run_pipeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> RunPipeline:
    """Run `conveyor run` in this process on a spec body; `files` go next to the pipeline."""
    counter = iter(range(1000))

    def run(
        body: str,
        *flags: str,
        files: dict[str, str] | None = None,
        raw: str | None = None,
        cache: Path | None = None,
        path: Path | None = None,
    ) -> Result:
        n = next(counter)
        pipeline = path or tmp_path / f"src{n}" / "pipeline.yaml"
        if path is None:
            pipeline.parent.mkdir()
            for rel, text in (files or {}).items():
                (pipeline.parent / rel).parent.mkdir(parents=True, exist_ok=True)
                (pipeline.parent / rel).write_text(text)
            pipeline.write_text(raw if raw is not None else pipeline_yaml(body))
        workdir, report = tmp_path / f"work{n}", tmp_path / f"report{n}.json"
        argv = [
            "run",
            str(pipeline),
            "--workdir",
            str(workdir),
            "--report",
            str(report),
            "--cache-dir",
            str(cache or tmp_path / "cache"),
            *flags,
        ]
        code = main(argv)
        captured = capsys.readouterr()
        data = json.loads(report.read_text()) if report.exists() else {}
        if data:
            RunStatus.model_validate(data)  # every report has the status shape
        return Result(code, data, captured.out, captured.err, workdir)

    return run


def conveyor_process(*argv: str, **kwargs: Any) -> subprocess.Popen[str]:
    """`conveyor ...` as a child process with no terminal attached."""
    return subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli.main", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "USER": "tester"},
        **kwargs,
    )


def process_gone(pid: int) -> bool:
    """True when `pid` no longer runs (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] == "Z"
