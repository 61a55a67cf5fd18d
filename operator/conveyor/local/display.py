"""What `conveyor run` shows: live job output prefixed by job name, progress, a final summary.

`PlainDisplay` writes plain lines (for pipes, files and CI logs); `LiveDisplay` adds a rich
progress view at the bottom of a terminal. Both are called from several threads (every job's
output reader), so each write is taken under one lock.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from conveyor.core.durations import format_duration
from conveyor.core.models import RunStatus
from conveyor.local.job import JobOutcome

_STYLES = {
    "Succeeded": "green",
    "Failed": "red",
    "Running": "cyan",
    "Pending": "dim",
    "Skipped": "yellow",
    "Waiting": "magenta",
}
_PALETTE = ("cyan", "magenta", "blue", "yellow", "green", "bright_cyan", "bright_magenta")
LIVE_ROWS = 12  # running jobs listed in the live view; the rest are counted


class PlainDisplay:
    """Plain lines, one per event or output line: `[lint] npm run lint`."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.lock = threading.Lock()

    def write(self, text: str) -> None:
        with self.lock:
            self.out.write(text + "\n")
            self.out.flush()

    def note(self, text: str) -> None:
        self.write(text)

    def job_started(self, name: str, attempt: int, log: Path) -> None:
        again = f" (attempt {attempt})" if attempt else ""
        self.write(f"==> {name} started{again}")

    def job_output(self, name: str, line: str) -> None:
        self.write(f"[{name}] {line}")

    def job_finished(self, outcome: JobOutcome) -> None:
        took = (outcome.completed_at - outcome.started_at).total_seconds()
        what = "succeeded" if outcome.state == "Succeeded" else "failed"
        detail = f" ({outcome.reason})" if outcome.reason else ""
        cached = ", cache hit" if outcome.cached_hit else ""
        self.write(f"==> {outcome.name} {what}{detail} in {format_duration(took)}{cached}")

    def update(self, status: RunStatus) -> None:
        """Plain output has no live view; transitions were already printed."""

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        """Nothing to tear down."""

    def summary(self, status: RunStatus, logs: Mapping[str, Path]) -> None:
        rows = summary_rows(status, logs)
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for row in rows:
            cells = [row[i].ljust(widths[i]) for i in range(4)]
            self.write("  ".join([*cells, row[4]]).rstrip())


class LiveDisplay(PlainDisplay):
    """Output above, a progress view below it (running jobs and counts), on a terminal."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__()
        self.console = console or Console()
        self.status: RunStatus | None = None
        self.colours: dict[str, str] = {}
        # Jobs started since the last plan still show Pending in its status; track them here.
        self.started: dict[str, float] = {}
        self.live = Live(self.render(), console=self.console, refresh_per_second=4, transient=True)
        self.live.start()

    def write(self, text: str) -> None:
        with self.lock:
            self.console.print(Text(text), highlight=False, soft_wrap=True)

    def job_started(self, name: str, attempt: int, log: Path) -> None:
        self.started[name] = time.monotonic()
        super().job_started(name, attempt, log)

    def job_finished(self, outcome: JobOutcome) -> None:
        self.started.pop(outcome.name, None)
        super().job_finished(outcome)

    def job_output(self, name: str, line: str) -> None:
        colour = self.colours.setdefault(name, _PALETTE[len(self.colours) % len(_PALETTE)])
        with self.lock:
            prefix = Text(f"[{name}] ", style=colour)
            self.console.print(prefix + Text(line), highlight=False, soft_wrap=True)

    def update(self, status: RunStatus) -> None:
        self.status = status
        self.live.update(self.render())

    def render(self) -> Group | Text:
        status = self.status
        if status is None:
            return Text("starting...", style="dim")
        counts: dict[str, int] = {}
        running: list[str] = []
        for stage in status.stages:
            for job in stage.jobs:
                state = job.status
                if job.name in self.started and state == "Pending":
                    state = "Running"
                counts[state] = counts.get(state, 0) + 1
                if state == "Running":
                    took = time.monotonic() - self.started.get(job.name, time.monotonic())
                    running.append(f"  {job.name} {format_duration(took)}")
        parts = [f"{n} {state.lower()}" for state, n in sorted(counts.items()) if n and state]
        head = Text(f"{status.phase}", style=_STYLES.get(status.phase, "bold"))
        head.append(f"  {', '.join(parts)}", style="default")
        if status.current_stage:
            head.append(f"  stage {status.current_stage}", style="dim")
        lines: list[Text] = [head]
        lines += [Text(r, style="cyan") for r in running[:LIVE_ROWS]]
        if len(running) > LIVE_ROWS:
            lines.append(Text(f"  ... and {len(running) - LIVE_ROWS} more", style="dim"))
        return Group(*lines)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self.live.stop()
        try:
            yield
        finally:
            self.live.start()

    def close(self) -> None:
        self.live.stop()

    def summary(self, status: RunStatus, logs: Mapping[str, Path]) -> None:
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        rows = summary_rows(status, logs)
        for title in rows[0]:
            table.add_column(title)
        for row in rows[1:]:
            table.add_row(row[0], Text(row[1], style=_STYLES.get(row[1].split()[0], "")), *row[2:])
        with self.lock:
            self.console.print(table)


def summary_rows(status: RunStatus, logs: Mapping[str, Path]) -> list[tuple[str, ...]]:
    """Header and one row per job: job, status, duration, cached, log path."""
    rows: list[tuple[str, ...]] = [("JOB", "STATUS", "DURATION", "CACHED", "LOG")]
    for stage in status.stages:
        for job in stage.jobs:
            took = "" if job.duration_seconds is None else format_duration(job.duration_seconds)
            cached = "hit" if job.cached_hit else ""
            log = str(logs[job.name]) if job.name in logs else ""
            state = job.status if not job.reason else f"{job.status} ({job.reason})"
            rows.append((job.name, state, took, cached, log))
    return rows
