"""One job's shell process: its own process group, live output, deadlines and stopping.

Every job runs as `sh -c SCRIPT` in a new session, so stopping it (timeout, cancel, Ctrl-C)
signals the whole process group: SIGTERM first, SIGKILL after a grace period. When the shell
exits, whatever it left behind in its group is killed too, as a pod's end would, so no job
outlives its run and no stray child keeps the output pipe open.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_GRACE_SECONDS = 5.0


def job_script(commands: Sequence[str]) -> str:
    """The script a job runs: stop at the first failing command, echo each one first."""
    lines = ["set -e"]
    for command in commands:
        lines.append(f"printf '%s\\n' {shlex.quote('+ ' + command)}")
        lines.append(command)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int
    stopped_reason: str | None  # set when the process was stopped rather than exiting


class JobProcess:
    """Runs one script; `stop()` may be called from any thread, before or during the run."""

    def __init__(
        self,
        script: str,
        cwd: Path,
        env: Mapping[str, str],
        on_line: Callable[[str], None],
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
    ) -> None:
        self.script = script
        self.cwd = cwd
        self.env = dict(env)
        self.on_line = on_line
        self.grace_seconds = grace_seconds
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop_reason: str | None = None
        self._stopped = threading.Event()
        self._kill_timer: threading.Timer | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def run(self, deadline: float | None, stop_reason_on_deadline: str) -> ProcessResult:
        """Run to completion or until `deadline` (a `time.monotonic()` value) or `stop()`."""
        with self._lock:
            if self._stop_reason is not None:
                return ProcessResult(-int(signal.SIGTERM), self._stop_reason)
            self._proc = subprocess.Popen(
                ["sh", "-c", self.script],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = self._proc
        reader = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        reader.start()
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                code = proc.wait(timeout=timeout)
                break
            except subprocess.TimeoutExpired:
                self.stop(stop_reason_on_deadline)
        if self._stop_reason is not None:
            # Give the rest of the group its grace period before the final SIGKILL.
            self._wait_group_gone(proc.pid, self.grace_seconds)
        _signal_group(proc.pid, signal.SIGKILL)
        if self._kill_timer is not None:
            self._kill_timer.cancel()  # the group is gone; its id may be reused later
        # A process that left the group (setsid) may still hold the pipe: do not wait forever.
        reader.join(timeout=self.grace_seconds)
        return ProcessResult(code, self._stop_reason)

    def stop(self, reason: str) -> None:
        """Ask the process group to end (SIGTERM), and kill it after the grace period."""
        with self._lock:
            if self._stop_reason is None:
                self._stop_reason = reason
            proc = self._proc
        if proc is None or self._stopped.is_set():
            return
        self._stopped.set()
        _signal_group(proc.pid, signal.SIGTERM)
        timer = threading.Timer(self.grace_seconds, _signal_group, (proc.pid, signal.SIGKILL))
        timer.daemon = True
        self._kill_timer = timer
        timer.start()

    def _pump(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for raw in proc.stdout:
                self.on_line(raw.decode("utf-8", errors="replace").rstrip("\r\n"))

    @staticmethod
    def _wait_group_gone(pgid: int, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if not _group_alive(pgid):
                return
            time.sleep(0.05)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return _live_members(pgid) != 0


def _live_members(pgid: int) -> int | None:
    """Members of the group that are not zombies, or None where /proc cannot tell.

    Orphaned zombies stay in their group until an init process reaps them, and some
    container inits never do; they must not count as a job still running.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    count = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, pgrp, ...
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            count += 1
    return count
