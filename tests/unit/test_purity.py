"""The core stays pure: no Kubernetes client, no kopf, no clock, no filesystem, no processes."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "operator" / "conveyor" / "core"
FORBIDDEN_MODULES = {
    "kopf",
    "kubernetes",
    "kubernetes_asyncio",
    "aiohttp",
    "asyncio",
    "subprocess",
    "time",
    "os",
    "pathlib",
    "shutil",
    "socket",
    "random",
    "conveyor.k8s",
    "conveyor.local",
    "conveyor.operator",
    "conveyor.cli",
}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "open", "eval", "exec"}


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_core_imports_nothing_impure() -> None:
    files = sorted(CORE.glob("*.py"))
    assert files
    for path in files:
        tree = ast.parse(path.read_text())
        for module in _imports(tree):
            root_hits = {m for m in FORBIDDEN_MODULES if module == m or module.startswith(m + ".")}
            assert not root_hits, f"{path.name} imports {module}"


def test_core_never_reads_the_clock_or_files() -> None:
    for path in sorted(CORE.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                assert name not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno} calls {name}()"
