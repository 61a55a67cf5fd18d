"""One attempt of one job on this machine: workspace, artifacts, cache, commands, results.

`JobAttempt.run()` is called on a worker thread and returns a `JobOutcome`; `stop()` may be
called from the runner's thread at any moment (timeout, cancel, run timeout). Every attempt
gets a fresh copy of the source, so a retry never sees what the failed attempt left behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TextIO

from conveyor.core.cachekey import CacheKeyError, render_cache_key
from conveyor.core.graph import JobNode
from conveyor.core.models import RunContext
from conveyor.core.planner import REASON_DEADLINE
from conveyor.local.cache import LocalCache
from conveyor.local.files import (
    copy_paths,
    copy_source,
    copy_tree_into,
    expand_paths,
    hash_files,
    safe_filename,
)
from conveyor.local.process import JobProcess, job_script


@dataclass(frozen=True)
class RunPaths:
    """Where one run keeps its files: `<workdir>/<run-id>/{workspaces,logs,artifacts}`."""

    run_dir: Path

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    @property
    def artifacts(self) -> Path:
        return self.run_dir / "artifacts"

    @property
    def workspaces(self) -> Path:
        return self.run_dir / "workspaces"

    def log(self, job: str, attempt: int) -> Path:
        return self.logs / f"{safe_filename(job)}.{attempt}.log"

    def workspace(self, job: str, attempt: int) -> Path:
        return self.workspaces / f"{safe_filename(job)}.{attempt}"

    def artifact_dir(self, job: str) -> Path:
        return self.artifacts / safe_filename(job)


@dataclass(frozen=True)
class JobSetup:
    """What every attempt of a run shares."""

    run_id: str
    paths: RunPaths
    source: Path
    exclude: tuple[Path, ...]
    context: RunContext
    cache: LocalCache
    grace_seconds: float


@dataclass(frozen=True)
class JobOutcome:
    name: str
    attempt: int
    state: Literal["Succeeded", "Failed"]
    exit_code: int | None
    started_at: datetime
    completed_at: datetime
    reason: str | None
    message: str | None
    cached_hit: bool
    log_path: Path


class JobAttempt:
    """One attempt of one job; output lines go to its log file and to `on_line`."""

    def __init__(
        self,
        setup: JobSetup,
        job: JobNode,
        attempt: int,
        artifacts_from: tuple[str, ...],
        started_at: datetime,
        on_line: Callable[[str, str], None],
    ) -> None:
        self.setup = setup
        self.job = job
        self.attempt = attempt
        self.artifacts_from = artifacts_from
        self.started_at = started_at
        self.deadline = time.monotonic() + job.timeout_seconds
        self.on_line = on_line
        self.log_path = setup.paths.log(job.name, attempt)
        self.workspace = setup.paths.workspace(job.name, attempt)
        self.process = JobProcess(
            job_script(job.commands),
            self.workspace,
            self.environment(),
            self._output,
            grace_seconds=setup.grace_seconds,
        )
        self._log: TextIO | None = None

    def environment(self) -> dict[str, str]:
        ctx = self.setup.context
        env = dict(os.environ)
        env.update(self.job.env)  # job env, defaults and matrix values, as the graph built it
        env.update(
            {
                "CONVEYOR_RUN": self.setup.run_id,
                "CONVEYOR_JOB": self.job.name,
                "CONVEYOR_STAGE": self.job.stage,
                "CONVEYOR_BRANCH": ctx.branch or "",
                "CONVEYOR_COMMIT": ctx.commit or "",
                "CONVEYOR_EVENT": ctx.event or "",
                "CONVEYOR_ATTEMPT": str(self.attempt),
                "CONVEYOR_WORKSPACE": str(self.workspace),
            }
        )
        return env

    def stop(self, reason: str) -> None:
        self.process.stop(reason)

    def run(self) -> JobOutcome:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("w", encoding="utf-8", errors="replace") as log:
            self._log = log
            try:
                return self._run()
            except (OSError, shutil.Error) as err:
                self.note(f"error: {err}")
                return self.outcome("Failed", None, "WorkspaceError", str(err), False)
            finally:
                self._log = None

    def _run(self) -> JobOutcome:
        setup, job = self.setup, self.job
        copy_source(setup.source, self.workspace, setup.exclude)
        for dep in self.artifacts_from:
            stored = setup.paths.artifact_dir(dep)
            copy_tree_into(stored, self.workspace)
            self.note(f"restored artifacts of {dep}")

        key: str | None = None
        hit = False
        if job.cache is not None:
            try:
                key = render_cache_key(
                    job.cache.key, setup.context, lambda p: hash_files(self.workspace, p)
                )
            except CacheKeyError as err:
                self.note(f"error: cache key: {err}")
                return self.outcome("Failed", None, "CacheKeyError", str(err), False)
            hit = setup.cache.restore(key, self.workspace)
            self.note(f"cache {'hit' if hit else 'miss'} on key {key}")

        if hit and job.cache is not None and job.cache.skip_on_hit:
            self.note("commands skipped (cache hit, skipOnHit)")
            result_code, stopped = 0, None
        else:
            result = self.process.run(self.deadline, REASON_DEADLINE)
            result_code, stopped = result.exit_code, result.stopped_reason
            if result_code < 0:
                result_code = 128 - result_code  # the shell's convention for signals

        if stopped is not None:
            why = "timed out" if stopped == REASON_DEADLINE else f"stopped ({stopped})"
            self.note(f"{why} after {self.elapsed():.1f}s")
            return self.outcome("Failed", result_code, stopped, why, hit)
        if result_code != 0:
            self.note(f"exited with code {result_code}")
            return self.outcome("Failed", result_code, None, f"exit code {result_code}", hit)

        if job.cache is not None and key is not None and not hit:
            published = setup.cache.save(key, self.workspace, list(job.cache.paths))
            self.note(
                f"cache saved under key {key}"
                if published
                else f"cache key {key} was saved by another run meanwhile; kept that one"
            )
        if job.artifacts is not None:
            self.save_artifacts(list(job.artifacts.paths))
        skipped = hit and job.cache is not None and job.cache.skip_on_hit
        message = "cache hit, commands skipped" if skipped else None
        return self.outcome("Succeeded", 0, None, message, hit)

    def save_artifacts(self, patterns: list[str]) -> None:
        found = expand_paths(self.workspace, patterns)
        if not found:
            self.note(f"warning: no files match the artifact paths {patterns}")
        final = self.setup.paths.artifact_dir(self.job.name)
        final.parent.mkdir(parents=True, exist_ok=True)
        # Build beside the final place and rename, so a dependent never restores half a copy.
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
        copy_paths(self.workspace, tmp, found)
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
        self.note(f"saved artifacts: {', '.join(found) or 'none'}")

    def elapsed(self) -> float:
        return (datetime.now(UTC) - self.started_at).total_seconds()

    def outcome(
        self,
        state: Literal["Succeeded", "Failed"],
        exit_code: int | None,
        reason: str | None,
        message: str | None,
        hit: bool,
    ) -> JobOutcome:
        text = f"{message}; log: {self.log_path}" if message else f"log: {self.log_path}"
        return JobOutcome(
            name=self.job.name,
            attempt=self.attempt,
            state=state,
            exit_code=exit_code,
            started_at=self.started_at,
            completed_at=datetime.now(UTC),
            reason=reason,
            message=text,
            cached_hit=hit,
            log_path=self.log_path,
        )

    def note(self, text: str) -> None:
        """A line from the runner itself (not the job's commands), marked with `==`."""
        self._output(f"== {text}")

    def _output(self, line: str) -> None:
        log = self._log
        if log is not None:
            try:
                log.write(line + "\n")
                log.flush()
            except ValueError:
                pass  # a straggler wrote after the attempt ended and closed its log

        self.on_line(self.job.name, line)
