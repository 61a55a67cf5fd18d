"""The `conveyor` command: one entry point, one module per group of subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from conveyor import __version__

# Subcommand -> module providing `add_arguments(parser)` and `run(args) -> int`. Modules keep
# heavy imports (the Kubernetes client, kopf) inside `run`, so every command starts fast.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("conveyor.cli.run", "run a pipeline on this machine, each job as a local process"),
    "validate": ("conveyor.cli.validate", "check pipeline files and report every problem"),
    "graph": ("conveyor.cli.graph", "print a pipeline's job graph as Mermaid or Graphviz dot"),
    "crds": ("conveyor.cli.crds", "print or write the CustomResourceDefinitions"),
    "operator": ("conveyor.cli.operator", "run the operator against a cluster"),
    "status": ("conveyor.cli.status", "show a PipelineRun's phase, stages and jobs"),
    "logs": ("conveyor.cli.logs", "print the output of a PipelineRun's jobs"),
    "approve": ("conveyor.cli.gate", "approve a waiting gate of a PipelineRun"),
    "reject": ("conveyor.cli.gate", "reject a waiting gate of a PipelineRun"),
    "cancel": ("conveyor.cli.cancel", "cancel a running PipelineRun"),
}

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_WAITING = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conveyor", description="CI/CD pipelines as DAGs of Kubernetes Jobs."
    )
    parser.add_argument("--version", action="version", version=f"conveyor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(module=module_name)
        _module(module_name).add_arguments(command)
    return parser


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "module", None):
        parser.print_help()
        return EXIT_INVALID
    module = _module(args.module)
    code: int = module.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
