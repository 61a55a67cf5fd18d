"""Reading pipeline files for the CLI, with errors as `FILE: path: message` lines."""

from __future__ import annotations

import sys
from pathlib import Path

from conveyor.core.documents import PipelineFile, parse_documents
from conveyor.core.problems import Problem


def read_pipeline_file(path: str) -> PipelineFile:
    """Parse one file; an unreadable file becomes a problem, never a traceback."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        return PipelineFile(problems=[Problem("", f"cannot read the file: {err.strerror}")])
    except UnicodeDecodeError:
        return PipelineFile(problems=[Problem("", "the file is not UTF-8 text")])
    return parse_documents(text)


def print_problems(path: str, problems: list[Problem]) -> None:
    for problem in problems:
        where = f"{path}: {problem.path}: " if problem.path else f"{path}: "
        print(f"{where}{problem.message}", file=sys.stderr)
