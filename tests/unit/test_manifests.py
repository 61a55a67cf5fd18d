"""Job manifests built from a JobNode: names, labels, restricted pods, env, deadlines, scripts."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conveyor.core.cachekey import combine_file_digests, render_cache_key
from conveyor.core.graph import require_graph
from conveyor.core.manifests import (
    ANNOTATION_JOB_NAME,
    CACHE_KEY_PROGRAM,
    LABEL_ATTEMPT,
    LABEL_JOB,
    LABEL_RUN,
    PodOptions,
    RunRef,
    artifact_cleanup_manifest,
    cache_key_segments,
    job_manifest,
    run_store_claim_manifest,
    run_store_claim_name,
    store_claim,
)
from conveyor.core.models import PipelineSpec, RunContext
from conveyor.core.naming import child_job_name, label_value

CONTEXT = RunContext(branch="main", commit="3f2c9e1", event="push", triggered_by="anna")
RUN = RunRef("web-x7k2p", "team-a", "uid-123", CONTEXT)
SPEC = PipelineSpec.model_validate(
    {
        "defaults": {"image": "node:20", "timeout": "10m", "env": {"CI": "true"}},
        "cache": {"claimName": "conveyor-cache"},
        "stages": [
            {
                "name": "check",
                "jobs": [
                    {
                        "name": "install",
                        "commands": ["npm ci", "echo 'done'"],
                        "cache": {
                            "key": "npm-{{ hashFiles('package-lock.json') }}-{{ branch }}",
                            "paths": ["node_modules/"],
                            "skipOnHit": True,
                        },
                        "artifacts": {"paths": ["node_modules"], "expireIn": "1d"},
                    },
                    {
                        "name": "e2e",
                        "dependsOn": ["install"],
                        "image": "playwright:1",
                        "matrix": {"browser": ["firefox"]},
                        "commands": ["npm run e2e"],
                        "timeout": 90.5,
                    },
                ],
            }
        ],
    }
)
GRAPH = require_graph(SPEC)


def manifest(job: str, attempt: int = 0, **options: Any) -> dict[str, Any]:
    opts = PodOptions(store_claim="conveyor-cache", image_pull_policy="Never", **options)
    deps = ("install",) if job != "install" else ()
    return job_manifest(RUN, GRAPH.jobs[job], attempt, opts, deps)


def containers(m: dict[str, Any]) -> list[dict[str, Any]]:
    pod = m["spec"]["template"]["spec"]
    return list(pod.get("initContainers", [])) + list(pod["containers"])


def test_name_labels_annotations_and_owner() -> None:
    m = manifest("e2e[browser=firefox]", attempt=1)
    meta = m["metadata"]
    assert meta["name"] == child_job_name("web-x7k2p", "e2e[browser=firefox]", 1)
    assert len(meta["name"]) <= 63
    assert meta["namespace"] == "team-a"
    assert meta["labels"][LABEL_RUN] == "web-x7k2p"
    assert meta["labels"][LABEL_JOB] == label_value("e2e[browser=firefox]")
    assert meta["labels"][LABEL_ATTEMPT] == "1"
    assert meta["annotations"][ANNOTATION_JOB_NAME] == "e2e[browser=firefox]"
    assert m["spec"]["template"]["metadata"]["labels"] == meta["labels"]
    (owner,) = meta["ownerReferences"]
    assert owner["kind"] == "PipelineRun" and owner["uid"] == "uid-123"
    assert owner["controller"] is True and owner["blockOwnerDeletion"] is True


def test_retries_are_new_jobs_and_deadline_comes_from_the_timeout() -> None:
    m = manifest("e2e[browser=firefox]")
    assert m["spec"]["backoffLimit"] == 0
    assert m["spec"]["activeDeadlineSeconds"] == 91  # 90.5 rounded up
    assert manifest("install")["spec"]["activeDeadlineSeconds"] == 600
    assert m["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_pods_meet_the_restricted_pod_security_standard() -> None:
    m = manifest("install")
    pod = m["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in containers(m):
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["runAsNonRoot"] is True
        assert container["imagePullPolicy"] == "Never"
    for volume in pod["volumes"]:
        assert "hostPath" not in volume


def test_restricted_can_be_turned_off() -> None:
    m = manifest("install", restricted=False)
    pod = m["spec"]["template"]["spec"]
    assert "runAsNonRoot" not in pod["securityContext"]
    assert all("securityContext" not in c for c in containers(m))


def test_image_env_and_workspace() -> None:
    m = manifest("e2e[browser=firefox]", attempt=2)
    main = m["spec"]["template"]["spec"]["containers"][0]
    assert main["image"] == "playwright:1"
    assert manifest("install")["spec"]["template"]["spec"]["containers"][0]["image"] == "node:20"
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env["BROWSER"] == "firefox"
    assert env["CI"] == "true"
    assert env["CONVEYOR_RUN"] == "web-x7k2p"
    assert env["CONVEYOR_JOB"] == "e2e[browser=firefox]"
    assert env["CONVEYOR_STAGE"] == "check"
    assert env["CONVEYOR_BRANCH"] == "main"
    assert env["CONVEYOR_COMMIT"] == "3f2c9e1"
    assert env["CONVEYOR_EVENT"] == "push"
    assert env["CONVEYOR_ATTEMPT"] == "2"
    assert env["CONVEYOR_WORKSPACE"] == "/workspace"
    assert main["workingDir"] == "/workspace"
    assert main["command"][:2] == ["sh", "-c"]
    assert {"name": "workspace", "emptyDir": {}} in m["spec"]["template"]["spec"]["volumes"]


def test_default_image_when_no_job_or_default_image() -> None:
    spec = PipelineSpec.model_validate(
        {"stages": [{"name": "s", "jobs": [{"name": "a", "commands": ["true"]}]}]}
    )
    node = require_graph(spec).jobs["a"]
    m = job_manifest(RUN, node, 0, PodOptions(default_image="busybox:x"))
    assert m["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:x"
    assert "imagePullPolicy" not in m["spec"]["template"]["spec"]["containers"][0]


def test_source_artifacts_and_cache_steps() -> None:
    m = manifest("e2e[browser=firefox]", git_url="http://git/repo.git", git_revision="abc")
    names = [c["name"] for c in m["spec"]["template"]["spec"]["initContainers"]]
    assert names == ["source", "artifacts"]
    script = m["spec"]["template"]["spec"]["initContainers"][1]["command"][2]
    assert "/conveyor-store/artifacts/web-x7k2p/install/." in script
    install = manifest("install")
    assert [c["name"] for c in install["spec"]["template"]["spec"]["initContainers"]] == ["cache"]
    claims = [
        v for v in install["spec"]["template"]["spec"]["volumes"] if "persistentVolumeClaim" in v
    ]
    assert claims[0]["persistentVolumeClaim"]["claimName"] == "conveyor-cache"


def run_script(
    script: str, workdir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # The generated script targets /workspace and /conveyor; rewrite them into a temp dir.
    text = (
        script.replace("/workspace", str(workdir / "ws"))
        .replace("/conveyor-store", str(workdir / "store"))
        .replace("/conveyor/", str(workdir / "ctl") + "/")
        .replace("/dev/termination-log", str(workdir / "term"))
    )
    return subprocess.run(
        ["sh", "-c", text], cwd=workdir / "ws", capture_output=True, text=True,
        env={**os.environ, **(env or {})}, check=False,
    )  # fmt: skip


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    for sub in ("ws", "store", "ctl"):
        (tmp_path / sub).mkdir()
    return tmp_path


def test_main_script_echoes_commands_and_stops_at_the_first_failure(workdir: Path) -> None:
    spec = PipelineSpec.model_validate(
        {
            "stages": [
                {
                    "name": "s",
                    "jobs": [{"name": "a", "commands": ["echo one", "false", "echo never"]}],
                }
            ]
        }
    )
    m = job_manifest(RUN, require_graph(spec).jobs["a"], 0, PodOptions())
    proc = run_script(m["spec"]["template"]["spec"]["containers"][0]["command"][2], workdir)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == ["$ echo one", "one", "$ false"]
    assert json.loads((workdir / "term").read_text()) == {
        "exitCode": 1, "cacheKey": "", "cacheHit": False,
    }  # fmt: skip


def test_cache_key_program_matches_the_core_digest_rule(workdir: Path) -> None:
    (workdir / "ws" / "package-lock.json").write_text('{"lock": 1}\n')
    (workdir / "ws" / "sub").mkdir()
    (workdir / "ws" / "sub" / "package-lock.json").write_text("x")
    template = "npm-{{ hashFiles('package-lock.json', '**/package-lock.json') }}-{{ branch }}"

    def hash_files(patterns: tuple[str, ...]) -> str:
        files = {}
        for rel in ("package-lock.json", "sub/package-lock.json"):
            files[rel] = hashlib.sha256((workdir / "ws" / rel).read_bytes()).hexdigest()
        return combine_file_digests(files.items())

    expected = render_cache_key(template, CONTEXT, hash_files)
    spec = {"segments": cache_key_segments(template, CONTEXT)}
    args = [str(workdir / "ws"), "", str(workdir / "ctl")]
    env = {**os.environ, "CONVEYOR_CACHE_SPEC": json.dumps(spec)}
    proc = subprocess.run(
        [sys.executable, "-c", CACHE_KEY_PROGRAM, *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"miss ({expected})" in proc.stdout
    assert (workdir / "ctl" / "cache.env").read_text() == (
        f"CONVEYOR_CACHE_KEY={expected}\nCONVEYOR_CACHE_HIT=false\n"
    )


def test_cache_saves_atomically_and_restores_on_a_hit(workdir: Path) -> None:
    m = manifest("install")
    main = m["spec"]["template"]["spec"]["containers"][0]["command"][2]
    (workdir / "ctl" / "cache.env").write_text("CONVEYOR_CACHE_KEY=k1\nCONVEYOR_CACHE_HIT=false\n")
    # `npm ci` stands for the real install: a fake npm on PATH makes node_modules.
    bindir = workdir / "bin"
    bindir.mkdir()
    (bindir / "npm").write_text(
        "#!/bin/sh\nmkdir -p node_modules/x && echo data > node_modules/x/f\n"
    )
    (bindir / "npm").chmod(0o755)
    env = {"PATH": f"{bindir}:{os.environ['PATH']}"}
    proc = run_script(main, workdir, env)
    assert proc.returncode == 0, proc.stderr
    assert (workdir / "store" / "cache" / "k1" / "node_modules" / "x" / "f").read_text() == "data\n"
    assert not list((workdir / "store" / "cache").glob(".tmp-*"))
    assert not list((workdir / "store" / "cache").glob(".lock-*"))
    assert (workdir / "store" / "artifacts" / "web-x7k2p" / "install" / "node_modules").is_dir()
    # A hit with skipOnHit runs no command and reports the hit.
    (workdir / "ctl" / "cache.env").write_text("CONVEYOR_CACHE_KEY=k1\nCONVEYOR_CACHE_HIT=true\n")
    proc = run_script(main, workdir, {"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "commands skipped" in proc.stdout and "$ npm ci" not in proc.stdout
    assert json.loads((workdir / "term").read_text())["cacheHit"] is True


@pytest.mark.parametrize(("age_minutes", "saved"), [(90, True), (5, False)])
def test_a_lock_left_by_a_killed_pod_expires(workdir: Path, age_minutes: int, saved: bool) -> None:
    m = manifest("install")
    main = m["spec"]["template"]["spec"]["containers"][0]["command"][2]
    (workdir / "ctl" / "cache.env").write_text("CONVEYOR_CACHE_KEY=k2\nCONVEYOR_CACHE_HIT=false\n")
    lock = workdir / "store" / "cache" / ".lock-k2"
    lock.mkdir(parents=True)
    then = time.time() - age_minutes * 60
    os.utime(lock, (then, then))
    bindir = workdir / "bin"
    bindir.mkdir()
    (bindir / "npm").write_text(
        "#!/bin/sh\nmkdir -p node_modules/x && echo data > node_modules/x/f\n"
    )
    (bindir / "npm").chmod(0o755)
    proc = run_script(main, workdir, {"PATH": f"{bindir}:{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr
    # An hour-old lock is a writer that died; a fresh one is a writer still at work.
    assert (workdir / "store" / "cache" / "k2").is_dir() is saved
    assert lock.is_dir() is not saved


def test_artifact_paths_may_be_globs_as_in_conveyor_run(workdir: Path) -> None:
    spec = PipelineSpec.model_validate(
        {
            "cache": {"claimName": "store"},
            "stages": [
                {
                    "name": "s",
                    "jobs": [
                        {
                            "name": "test",
                            "commands": ["true"],
                            "artifacts": {"paths": ["coverage/*.xml", "**/*.log", "dist dir/"]},
                        }
                    ],
                }
            ],
        }
    )
    node = require_graph(spec).jobs["test"]
    m = job_manifest(RUN, node, 0, PodOptions(store_claim="store"), ())
    main = m["spec"]["template"]["spec"]["containers"][0]["command"][2]
    ws = workdir / "ws"
    for rel in ("coverage/a.xml", "coverage/b.txt", "logs/deep/x.log", "dist dir/app"):
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(rel)
    proc = run_script(main, workdir)
    assert proc.returncode == 0, proc.stderr
    saved = workdir / "store" / "artifacts" / "web-x7k2p" / "test"
    found = sorted(str(p.relative_to(saved)) for p in saved.rglob("*") if p.is_file())
    assert found == ["coverage/a.xml", "dist dir/app", "logs/deep/x.log"]


def test_artifact_cleanup_job() -> None:
    m = artifact_cleanup_manifest(RUN, PodOptions(store_claim="conveyor-cache"))
    assert m["metadata"]["labels"]["conveyor.dev/role"] == "cleanup"
    assert (
        "/conveyor-store/artifacts/web-x7k2p"
        in m["spec"]["template"]["spec"]["containers"][0]["command"][2]
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"stages": [{"name": "s", "jobs": [{"name": "a", "commands": ["x"]}]}]}, (None, False)),
        (
            {
                "cache": {"claimName": "shared"},
                "stages": [
                    {
                        "name": "s",
                        "jobs": [{"name": "a", "commands": ["x"], "artifacts": {"paths": ["d"]}}],
                    }
                ],
            },
            ("shared", False),
        ),
        (
            {
                "stages": [
                    {
                        "name": "s",
                        "jobs": [{"name": "a", "commands": ["x"], "artifacts": {"paths": ["d"]}}],
                    }
                ]
            },
            ("web-x7k2p-store", True),
        ),
        (
            {
                "stages": [{"name": "s", "jobs": [{"name": "a", "commands": ["x"]}]}],
                "finally": [
                    {"name": "f", "commands": ["x"], "cache": {"key": "k", "paths": ["p"]}}
                ],
            },
            ("web-x7k2p-store", True),
        ),
    ],
)
def test_store_claim_is_the_pipelines_or_the_runs_own(
    spec: dict[str, Any], expected: tuple[str | None, bool]
) -> None:
    assert store_claim("web-x7k2p", PipelineSpec.model_validate(spec)) == expected


def test_run_store_claim_is_owned_by_the_run() -> None:
    run = RunRef("web-x7k2p", "team", "uid-1")
    claim = run_store_claim_manifest(run, "2Gi", "fast")
    assert claim["metadata"]["name"] == "web-x7k2p-store"
    assert claim["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    assert len(run_store_claim_name("r" * 253)) <= 253
