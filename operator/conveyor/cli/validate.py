"""`conveyor validate FILE...`: exit 0 when every file is valid, else 2 and every problem."""

from __future__ import annotations

import argparse

from conveyor.cli.files import print_problems, read_pipeline_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="pipeline YAML files")


def run(args: argparse.Namespace) -> int:
    invalid = 0
    for path in args.files:
        parsed = read_pipeline_file(path)
        if parsed.problems:
            invalid += 1
            print_problems(path, parsed.problems)
        else:
            count = len(parsed.pipelines) + len(parsed.runs)
            print(f"{path}: valid ({count} object{'s' if count != 1 else ''})")
    return 2 if invalid else 0
