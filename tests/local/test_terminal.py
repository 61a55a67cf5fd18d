"""`conveyor run` on a real terminal (a pseudo-terminal): the live view and the gate prompt."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

PIPELINE = """
apiVersion: conveyor.dev/v1alpha1
kind: Pipeline
metadata: {name: tty}
spec:
  stages:
    - name: build
      jobs: [{name: compile, commands: ["echo compiled"]}]
    - name: ship
      gate: {approvers: [anna]}
      jobs: [{name: deploy, commands: ["echo deployed"]}]
"""


def run_on_terminal(tmp_path: Path, answer: str) -> tuple[int, str, dict[str, Any]]:
    """Run the pipeline with stdin and stdout on a pty; type `answer` at the gate prompt."""
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    report = tmp_path / "report.json"
    main_fd, child_fd = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120", "LINES": "40"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli.main", "run", str(tmp_path / "pipeline.yaml"),
         "--workdir", str(tmp_path / "work"), "--cache-dir", str(tmp_path / "cache"),
         "--report", str(report), "--branch", "main"],
        stdin=child_fd, stdout=child_fd, stderr=child_fd, env=env, close_fds=True,
    )  # fmt: skip
    os.close(child_fd)
    screen = b""
    answered = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main_fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(main_fd, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                screen += chunk
            if not answered and b"Approve? [y/n]" in screen:
                os.write(main_fd, answer.encode() + b"\r")
                answered = True
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main_fd)
    assert answered, f"no gate prompt on the terminal:\n{screen.decode(errors='replace')}"
    return code, screen.decode(errors="replace"), json.loads(report.read_text())


@pytest.mark.parametrize(
    ("answer", "code", "phase", "decision"),
    [("y", 0, "Succeeded", "Approved"), ("n", 1, "Failed", "Rejected")],
)
def test_gate_prompt_on_a_terminal(
    tmp_path: Path, answer: str, code: int, phase: str, decision: str
) -> None:
    exit_code, screen, report = run_on_terminal(tmp_path, answer)
    assert exit_code == code, screen
    assert report["phase"] == phase
    ship = next(s for s in report["stages"] if s["name"] == "ship")
    assert ship["approval"]["decision"] == decision
    # The live view draws with terminal control sequences, which plain output never has.
    assert "\x1b[" in screen
