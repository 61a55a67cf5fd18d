"""`conveyor graph FILE [--format mermaid|dot]`: the job graph, for docs and debugging."""

from __future__ import annotations

import argparse

from conveyor.cli.files import print_problems, read_pipeline_file
from conveyor.core.documents import runnable
from conveyor.core.graph import require_graph
from conveyor.core.render import to_dot, to_mermaid


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a pipeline YAML file")
    parser.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")


def run(args: argparse.Namespace) -> int:
    found, problems = runnable(read_pipeline_file(args.file))
    if found is None:
        print_problems(args.file, problems)
        return 2
    graph = require_graph(found.spec)
    print(to_mermaid(graph) if args.format == "mermaid" else to_dot(graph), end="")
    return 0
