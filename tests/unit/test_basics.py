"""Durations, names, conditions and cache keys: the small pure helpers."""

from __future__ import annotations

import pytest

from conveyor.core.cachekey import (
    CacheKeyError,
    combine_file_digests,
    parse_cache_key,
    render_cache_key,
)
from conveyor.core.conditions import ConditionError, evaluate_condition, glob_match, to_cel
from conveyor.core.durations import parse_duration
from conveyor.core.models import RunContext
from conveyor.core.naming import child_job_name, label_value, name_problem


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        ("90", 90.0),
        ("90s", 90.0),
        ("10m", 600.0),
        ("1h30m", 5400.0),
        ("7d", 604800.0),
        (1.5, 1.5),
    ],
)
def test_durations(text: int | float | str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["10x", "", "m", "-5", 0, "1h 30m", "s10"])
def test_bad_durations(text: int | str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_child_job_names_are_deterministic_short_and_distinct() -> None:
    long_run = "web-" + "x" * 70
    names = {child_job_name(long_run, f"e2e[browser={b}]", 0) for b in range(1000)}
    assert len(names) == 1000
    assert all(len(n) <= 63 and n[0].isalnum() and n[-1].isalnum() for n in names)
    assert child_job_name("web-x7k2p", "lint", 0) == child_job_name("web-x7k2p", "lint", 0)
    assert child_job_name("web-x7k2p", "lint", 0) != child_job_name("web-x7k2p", "lint", 1)
    assert child_job_name("web-x7k2p", "lint", 0).startswith("web-x7k2p-lint-")


@pytest.mark.parametrize(("text", "safe"), [("lint", "lint"), ("e2e[browser=firefox]", None)])
def test_label_values(text: str, safe: str | None) -> None:
    value = label_value(text)
    assert len(value) <= 63
    if safe:
        assert value == safe
    else:
        assert "[" not in value and value != label_value("e2e[browser=chromium]")


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("deploy-staging", True),
        ("e2e", True),
        ("Lint", False),
        ("a_b", False),
        ("-a", False),
        ("a" * 51, False),
    ],
)
def test_names(name: str, ok: bool) -> None:
    assert (name_problem(name) is None) == ok


@pytest.mark.parametrize(
    ("condition", "context", "result"),
    [
        ("branch == 'main'", RunContext(branch="main"), True),
        ("branch == 'main'", RunContext(branch="dev"), False),
        ("branch:main", RunContext(branch="main"), True),
        ("branch:!main", RunContext(branch="main"), False),
        ("branch:!main", RunContext(branch="dev"), True),
        ("event:push", RunContext(event="push"), True),
        ("event:push", RunContext(event="pull_request"), False),
        ("branch:release/*", RunContext(branch="release/1.0"), True),
        (
            "glob(branch, 'release/*') && event == 'push'",
            RunContext(branch="release/2", event="push"),
            True,
        ),
        ("triggeredBy in ['anna', 'bob']", RunContext(triggered_by="anna"), True),
        ("branch.startsWith('feat')", RunContext(), False),
    ],
)
def test_conditions(condition: str, context: RunContext, result: bool) -> None:
    assert evaluate_condition(condition, context) is result


@pytest.mark.parametrize("condition", ["branch ==", "'text'", "__import__('os')", "nope == 1"])
def test_bad_conditions_raise_condition_error(condition: str) -> None:
    with pytest.raises(ConditionError):
        evaluate_condition(condition, RunContext(branch="main"))


def test_shorthand_becomes_cel() -> None:
    assert to_cel("branch:!main") == '!glob(branch, "main")'
    assert to_cel("branch == 'main'") == "branch == 'main'"


@pytest.mark.parametrize(
    ("text", "pattern", "result"),
    [
        ("release/1", "release/*", True),
        ("release/1/x", "release/*", False),
        ("a/b/c.lock", "**/*.lock", True),
        ("main", "main", True),
    ],
)
def test_glob(text: str, pattern: str, result: bool) -> None:
    assert glob_match(text, pattern) is result


def test_cache_key_renders_hash_files_and_context() -> None:
    seen: list[tuple[str, ...]] = []

    def fake_hash(patterns: tuple[str, ...]) -> str:
        seen.append(patterns)
        return "abc123"

    key = render_cache_key(
        "npm-{{ hashFiles('package-lock.json', 'x/*.lock') }}-{{ branch }}",
        RunContext(branch="main"),
        fake_hash,
    )
    assert key == "npm-abc123-main"
    assert seen == [("package-lock.json", "x/*.lock")]


@pytest.mark.parametrize(
    "template", ["{{ hashFiles() }}", "{{ nope }}", "a-{{ branch", "{{ hashFiles(x) }}"]
)
def test_bad_cache_keys(template: str) -> None:
    with pytest.raises(CacheKeyError):
        parse_cache_key(template)


def test_file_digest_depends_on_content_and_path_not_order() -> None:
    a = combine_file_digests([("a.lock", "11"), ("b.lock", "22")])
    assert a == combine_file_digests([("b.lock", "22"), ("a.lock", "11")])
    assert a != combine_file_digests([("a.lock", "11"), ("b.lock", "23")])
    assert a != combine_file_digests([("c.lock", "11"), ("b.lock", "22")])
    assert combine_file_digests([]) == ""
