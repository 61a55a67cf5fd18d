"""`conveyor run FILE`: run a pipeline on this machine, each job as a local shell process.

Exit codes: 0 succeeded (or skipped by its trigger), 1 failed, cancelled or rejected, 2 invalid
input, 3 stopped at a gate nobody decided (no terminal to ask). `--report` writes the run's
status in exactly the shape of a PipelineRun's `status`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.cli.files import print_problems, read_pipeline_file
from conveyor.core.documents import RunnableFile, runnable
from conveyor.core.durations import parse_duration
from conveyor.core.graph import Graph, require_graph
from conveyor.core.models import RunContext
from conveyor.core.naming import slug
from conveyor.core.problems import InvalidSpecError, Problem

if TYPE_CHECKING:
    from conveyor.local.display import LiveDisplay
    from conveyor.local.runner import Decision, GatePrompt

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_WAITING = 0, 1, 2, 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a file with a Pipeline and/or PipelineRun")
    parser.add_argument("--branch", help="branch of the run (default: the file's, else git's)")
    parser.add_argument("--event", help="event of the run (default: the file's, else push)")
    parser.add_argument("--commit", help="commit of the run (default: the file's, else HEAD)")
    parser.add_argument(
        "--approve", action="append", default=[], metavar="STAGE", help="approve a gated stage"
    )
    parser.add_argument(
        "--reject", action="append", default=[], metavar="STAGE", help="reject a gated stage"
    )
    parser.add_argument(
        "--parallel", type=int, metavar="N", help="jobs running at once (default: CPU count)"
    )
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="cache directory (default: ${XDG_CACHE_HOME:-~/.cache}/conveyor/cache)",
    )
    parser.add_argument("--report", metavar="FILE.json", help="write the run's status here")
    parser.add_argument(
        "--workdir",
        metavar="DIR",
        help="where runs keep workspaces, logs and artifacts (default: a conveyor directory "
        "in the system's temporary directory); kept after the run for debugging",
    )
    parser.add_argument(
        "--source",
        metavar="DIR",
        help="directory copied into each job's workspace (default: the pipeline file's directory)",
    )


def run(args: argparse.Namespace) -> int:
    found, problems = runnable(read_pipeline_file(args.file))
    if found is None:
        print_problems(args.file, problems)
        return EXIT_INVALID
    try:
        graph = require_graph(found.spec)
    except InvalidSpecError as err:
        print_problems(args.file, err.problems)
        return EXIT_INVALID

    usage: list[Problem] = []
    gated = {s.name for s in graph.stages if s.gate is not None}
    names = [s.name for s in graph.stages]
    for flag, stages in (("--approve", args.approve), ("--reject", args.reject)):
        for stage in stages:
            if stage not in names:
                usage.append(Problem(flag, f"no stage {stage!r} (stages: {', '.join(names)})"))
            elif stage not in gated:
                usage.append(Problem(flag, f"stage {stage!r} has no gate"))
    for stage in set(args.approve) & set(args.reject):
        usage.append(Problem("--reject", f"stage {stage!r} is both approved and rejected"))
    if args.parallel is not None and args.parallel < 1:
        usage.append(Problem("--parallel", "must be at least 1"))
    source = Path(args.source or Path(args.file).resolve().parent).resolve()
    if not source.is_dir():
        usage.append(Problem("--source", f"{source} is not a directory"))
    if usage:
        print_problems(args.file, usage)
        return EXIT_INVALID
    return _execute(args, found, graph, source)


def _execute(args: argparse.Namespace, found: RunnableFile, graph: Graph, source: Path) -> int:
    # The runner (and rich) load only when a run actually starts.
    from conveyor.local.cache import default_cache_dir  # noqa: PLC0415
    from conveyor.local.display import LiveDisplay, PlainDisplay  # noqa: PLC0415
    from conveyor.local.runner import LocalRun, RunOptions  # noqa: PLC0415

    user = os.environ.get("USER") or os.environ.get("LOGNAME") or _login_name()
    context = resolve_context(args, found.context, source, user)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()

    run_id = f"{slug(found.name)[:40]}-{secrets.token_hex(3)}"
    workdir = Path(args.workdir or Path(tempfile.gettempdir()) / "conveyor" / "runs")
    run_dir = workdir.resolve() / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(args.cache_dir).resolve() if args.cache_dir else default_cache_dir()
    decisions: dict[str, Decision] = dict.fromkeys(args.approve, "Approved")
    decisions.update(dict.fromkeys(args.reject, "Rejected"))

    options = RunOptions(
        run_id=run_id,
        graph=graph,
        context=context,
        source=source,
        run_dir=run_dir,
        cache_dir=cache_dir,
        parallel=args.parallel or os.cpu_count() or 1,
        trigger=found.spec.trigger,
        run_timeout_seconds=None if found.timeout is None else parse_duration(found.timeout),
        decisions=decisions,
        user=user,
    )
    display: PlainDisplay
    if interactive:
        live = LiveDisplay()
        display, ask = live, _prompt(live)
    else:
        display, ask = PlainDisplay(), None
    local = LocalRun(options, display, ask)

    def on_signal(signum: int, _frame: object) -> None:
        local.cancel()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    display.note(
        f"run {run_id}: branch {context.branch or '-'}, commit {context.commit or '-'}, "
        f"event {context.event or '-'}; workspaces and logs in {run_dir}"
    )
    try:
        result = local.execute()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        display.close()

    status = result.status
    report = status.model_dump(mode="json", by_alias=True)
    _write_json(run_dir / "status.json", report)
    if args.report:
        _write_json(Path(args.report), report)

    if status.phase != "Skipped":
        display.summary(status, result.logs)
    message = status.conditions[0].message if status.conditions else ""
    if result.waiting_stage is not None:
        stage = result.waiting_stage
        print(
            f"stage {stage!r} is waiting for approval and there is no terminal to ask; run "
            f"again with --approve {stage} (or --reject {stage})",
            file=sys.stderr,
        )
        return EXIT_WAITING
    if status.phase == "Skipped":
        print(f"run {run_id} skipped: {message}; nothing ran")
        return EXIT_OK
    took = status.duration_seconds or 0.0
    why = f": {message}" if status.phase != "Succeeded" and message else ""
    print(f"run {run_id} {status.phase.lower()} in {took:.1f}s{why}")
    print(f"logs: {run_dir / 'logs'}")
    return EXIT_OK if status.phase == "Succeeded" else EXIT_FAILED


def resolve_context(
    args: argparse.Namespace, declared: RunContext, source: Path, user: str | None
) -> RunContext:
    """Flags first, then the file's PipelineRun context, then the git checkout of the source."""
    branch = args.branch or declared.branch
    commit = args.commit or declared.commit
    if branch is None:
        branch = _git(source, "symbolic-ref", "--short", "-q", "HEAD")
    if commit is None:
        commit = _git(source, "rev-parse", "HEAD")
    return RunContext(
        branch=branch,
        commit=commit,
        event=args.event or declared.event or "push",
        triggered_by=declared.triggered_by or user,
    )


def _git(directory: Path, *argv: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *argv],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = done.stdout.strip()
    return value if done.returncode == 0 and value else None


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _prompt(display: LiveDisplay) -> GatePrompt:
    """Ask at a gate on the terminal: y approves, n rejects, Ctrl-C cancels the run."""

    def ask(stage: str) -> Decision | None:
        with display.paused():
            previous = signal.signal(signal.SIGINT, signal.default_int_handler)
            try:
                while True:
                    answer = input(f"Stage {stage!r} is waiting for approval. Approve? [y/n] ")
                    if answer.strip().lower() in ("y", "yes"):
                        return "Approved"
                    if answer.strip().lower() in ("n", "no"):
                        return "Rejected"
            except EOFError:
                return None
            except KeyboardInterrupt:
                if callable(previous):
                    previous(signal.SIGINT, None)  # the run's handler: cancel
                return None
            finally:
                signal.signal(signal.SIGINT, previous)

    return ask


def _login_name() -> str | None:
    # Containers and CI often run without USER set; the uid's name is the next best answer.
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
