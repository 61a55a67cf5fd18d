"""Kubernetes manifests for pipeline jobs, built as plain dicts from a `JobNode`.

Pure builders (no client, no clock) so every field that matters (names, labels, the restricted
Pod Security Standard, deadlines, the scripts that run inside the pod) is unit-testable. The
operator's adapter only sends what is built here.

Inside one Job's pod:
  init `source`    clones `spec.source.git` into /workspace (when set)
  init `artifacts` copies the artifacts of the jobs this one depends on into /workspace
  init `cache`     renders the cache key over the workspace (python3), restores a hit, and
                   writes /conveyor/cache.env for the main container
  `main`           runs the commands under `sh -e`, echoing each one, then saves the cache
                   (on a miss) and the artifacts; its termination message is a small JSON
                   document with the cache key and whether it hit.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from conveyor.core.cachekey import ContextField, HashFiles, Literal, parse_cache_key
from conveyor.core.graph import JobNode
from conveyor.core.models import FULL_API_VERSION, PipelineSpec, RunContext
from conveyor.core.naming import child_job_name, label_value, short_hash, slug

LABEL_RUN: Final = "conveyor.dev/run"
LABEL_JOB: Final = "conveyor.dev/job"
LABEL_ATTEMPT: Final = "conveyor.dev/attempt"
LABEL_ROLE: Final = "conveyor.dev/role"
ANNOTATION_JOB_NAME: Final = "conveyor.dev/job-name"
ANNOTATION_STAGE: Final = "conveyor.dev/stage"
ANNOTATION_RUN_NAME: Final = "conveyor.dev/run-name"  # labels may hold a hashed form
ANNOTATION_FAILURE_REASON: Final = "conveyor.dev/failure-reason"
ANNOTATION_FAILURE_MESSAGE: Final = "conveyor.dev/failure-message"
ROLE_JOB: Final = "job"
ROLE_CLEANUP: Final = "cleanup"
ROLE_STORE: Final = "store"

MAIN_CONTAINER: Final = "main"
WORKSPACE: Final = "/workspace"
CONTROL_DIR: Final = "/conveyor"
STORE_DIR: Final = "/conveyor-store"
TERMINATION_LOG: Final = "/dev/termination-log"
DEFAULT_IMAGE: Final = "localhost/conveyor/busybox:1"
DEFAULT_HELPER_IMAGE: Final = "localhost/conveyor/tools:1"


@dataclass(frozen=True)
class RunRef:
    """The run a Job belongs to: its identity for names, labels and the ownerReference."""

    name: str
    namespace: str
    uid: str
    context: RunContext = field(default_factory=RunContext)


@dataclass(frozen=True)
class PodOptions:
    """Operator settings and pipeline-wide choices that shape every job pod."""

    default_image: str = DEFAULT_IMAGE
    helper_image: str = DEFAULT_HELPER_IMAGE
    image_pull_policy: str | None = None
    run_as_user: int = 1000
    restricted: bool = True
    store_claim: str | None = None  # PVC for caches and artifacts (see `store_claim`)
    git_url: str | None = None
    git_revision: str = "HEAD"


def owner_reference(run: RunRef) -> dict[str, Any]:
    return {
        "apiVersion": FULL_API_VERSION,
        "kind": "PipelineRun",
        "name": run.name,
        "uid": run.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def needs_store(spec: PipelineSpec) -> bool:
    """Whether any job keeps a cache or publishes artifacts (both live on a volume)."""
    jobs = [job for stage in spec.stages for job in stage.jobs] + list(spec.finally_)
    return any(job.cache is not None or job.artifacts is not None for job in jobs)


def run_store_claim_name(run_name: str) -> str:
    """The run's own store claim: `<run>-store`, shortened with a hash past 253 characters."""
    name = f"{run_name}-store"
    if len(name) <= 253:
        return name
    return f"{run_name[:233].rstrip('-.')}-{short_hash(run_name)}-store"


def store_claim(run_name: str, spec: PipelineSpec) -> tuple[str | None, bool]:
    """The claim holding a run's caches and artifacts, and whether it is the run's own.

    The pipeline's `cache.claimName` is shared by all its runs (caches outlive runs). Without
    one, a run that needs a store gets its own claim, owned by the run: artifacts still pass
    between its jobs and caches work within the run, and deleting the run frees the volume.
    """
    if spec.cache is not None and spec.cache.claim_name:
        return spec.cache.claim_name, False
    if needs_store(spec):
        return run_store_claim_name(run_name), True
    return None, False


def run_store_claim_manifest(
    run: RunRef, size: str, storage_class: str | None = None
) -> dict[str, Any]:
    """The PersistentVolumeClaim of a run's own store (see `store_claim`)."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if storage_class:
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": run_store_claim_name(run.name),
            "namespace": run.namespace,
            "labels": {LABEL_RUN: label_value(run.name), LABEL_ROLE: ROLE_STORE},
            "ownerReferences": [owner_reference(run)],
        },
        "spec": spec,
    }


def job_labels(run_name: str, job_name: str, attempt: int) -> dict[str, str]:
    return {
        LABEL_RUN: label_value(run_name),
        LABEL_JOB: label_value(job_name),
        LABEL_ATTEMPT: str(attempt),
        LABEL_ROLE: ROLE_JOB,
    }


def artifact_dir(run: RunRef, job_name: str) -> str:
    """Where a job's artifacts live on the store volume (one directory per run and job)."""
    return f"{STORE_DIR}/artifacts/{run.name}/{slug(job_name)}"


# The workspace volume is owned by root while jobs run as another uid: without this, git
# refuses to work in the checkout ("detected dubious ownership").
GIT_SAFE_DIRECTORY: Final = [
    {"name": "GIT_CONFIG_COUNT", "value": "1"},
    {"name": "GIT_CONFIG_KEY_0", "value": "safe.directory"},
    {"name": "GIT_CONFIG_VALUE_0", "value": WORKSPACE},
]


def job_env(run: RunRef, node: JobNode, attempt: int) -> list[dict[str, str]]:
    """The job's own environment (defaults, job env, matrix values) and Conveyor's variables."""
    ctx = run.context
    env = dict(node.env)
    env.update(
        {
            "CONVEYOR_RUN": run.name,
            "CONVEYOR_JOB": node.name,
            "CONVEYOR_STAGE": node.stage,
            "CONVEYOR_BRANCH": ctx.branch or "",
            "CONVEYOR_COMMIT": ctx.commit or "",
            "CONVEYOR_EVENT": ctx.event or "",
            "CONVEYOR_ATTEMPT": str(attempt),
            "CONVEYOR_WORKSPACE": WORKSPACE,
            "CI": env.get("CI", "true"),
        }
    )
    out = [{"name": key, "value": value} for key, value in env.items()]
    names = {item["name"] for item in out}
    return out + [item for item in GIT_SAFE_DIRECTORY if item["name"] not in names]


def _clean_path(path: str) -> str:
    # `coverage/` and `coverage` mean the same directory; keep copies relative to the workspace.
    cleaned = path.strip().rstrip("/")
    return cleaned.lstrip("/") or "."


def main_script(node: JobNode, run: RunRef, options: PodOptions) -> str:
    """The main container's shell script: commands echoed and run with `set -e`, then saves."""
    lines = [
        "set -e",
        "__conveyor_result() {",
        "  __code=$?",
        '  printf \'{"exitCode":%d,"cacheKey":"%s","cacheHit":%s}\' "$__code" '
        f'"${{CONVEYOR_CACHE_KEY:-}}" "${{CONVEYOR_CACHE_HIT:-false}}" > {TERMINATION_LOG} '
        "2>/dev/null || true",
        "}",
        "trap __conveyor_result EXIT",
        f"if [ -f {CONTROL_DIR}/cache.env ]; then . {CONTROL_DIR}/cache.env; fi",
    ]
    body = []
    for command in node.commands:
        body.append(f"printf '%s\\n' {shlex.quote('$ ' + command)}")
        body.append(command)
    skip = node.cache is not None and node.cache.skip_on_hit
    if skip:
        lines.append('if [ "${CONVEYOR_CACHE_HIT:-false}" = true ]; then')
        lines.append('  echo "conveyor: cache hit ($CONVEYOR_CACHE_KEY): commands skipped"')
        lines.append("else")
        lines.extend(f"  {line}" if "\n" not in line else line for line in body)
        lines.append("fi")
    else:
        lines.extend(body)
    lines.append(f"cd {WORKSPACE}")
    if node.cache is not None and options.store_claim:
        lines.extend(_cache_save_lines(node.cache.paths))
    if node.artifacts is not None and options.store_claim:
        lines.extend(_artifact_save_lines(artifact_dir(run, node.name), node.artifacts.paths))
    return "\n".join(lines) + "\n"


def _shell_pattern(path: str) -> str:
    """A path for `for ... in`: literal text quoted, glob characters left to the shell."""
    if not any(c in path for c in "*?["):
        return shlex.quote(path)
    if "**" in path:
        # POSIX sh has no `**`; `find -path` (where `*` also crosses `/`) lists the matches.
        pattern = shlex.quote("./" + path.replace("**", "*"))
        return f'$(find . -path {pattern} 2>/dev/null | sed "s|^\\./||")'
    return "".join(c if c in "*?[]" else shlex.quote(c) for c in path)


def _copy_paths(paths: list[str], target: str) -> list[str]:
    # Paths are literal or globs (`coverage/*.xml`, `**/*.log`), as in `conveyor run`; a glob
    # that matches nothing stays as its text and is skipped by the existence test.
    words = " ".join(_shell_pattern(_clean_path(p)) for p in paths)
    return [
        f"for __p in {words}; do",
        '  if [ -e "$__p" ]; then',
        f'    mkdir -p "{target}/$(dirname "$__p")"',
        f'    cp -a "$__p" "{target}/$__p"',
        "  fi",
        "done",
    ]


def _cache_save_lines(paths: list[str]) -> list[str]:
    # Publish atomically: copy into a private temporary directory, then one rename. A
    # `mkdir` lock makes one writer win when two jobs save the same key at once; readers only
    # ever see complete entries because a key's directory appears by rename. A lock (or a
    # temporary directory) left by a pod killed mid-save is removed once it is an hour old,
    # so a crash never blocks a key for good. Pods often share pid numbers: the temporary
    # name carries the pod's host name too.
    root = f"{STORE_DIR}/cache"
    return [
        'if [ -n "${CONVEYOR_CACHE_KEY:-}" ] && [ "${CONVEYOR_CACHE_HIT:-false}" != true ]; then',
        f'  __root={root}; mkdir -p "$__root"',
        '  find "$__root" -maxdepth 1 \\( -name ".lock-*" -o -name ".tmp-*" \\) -mmin +60 '
        "-exec rm -rf {} + 2>/dev/null || true",
        '  if [ ! -e "$__root/$CONVEYOR_CACHE_KEY" ] && '
        'mkdir "$__root/.lock-$CONVEYOR_CACHE_KEY" 2>/dev/null; then',
        '    __tmp="$__root/.tmp-$CONVEYOR_CACHE_KEY-${HOSTNAME:-pod}-$$"',
        '    rm -rf "$__tmp"; mkdir -p "$__tmp"',
        *("    " + line for line in _copy_paths(paths, "$__tmp")),
        '    mv "$__tmp" "$__root/$CONVEYOR_CACHE_KEY"',
        '    rmdir "$__root/.lock-$CONVEYOR_CACHE_KEY"',
        '    echo "conveyor: cache saved ($CONVEYOR_CACHE_KEY)"',
        "  fi",
        "fi",
    ]


def _artifact_save_lines(target: str, paths: list[str]) -> list[str]:
    return [
        f'__tmp="{target}.tmp-$$"',
        'rm -rf "$__tmp"; mkdir -p "$__tmp"',
        *_copy_paths(paths, "$__tmp"),
        f'rm -rf "{target}"; mv "$__tmp" "{target}"',
        f'echo "conveyor: artifacts saved ({" ".join(_clean_path(p) for p in paths)})"',
    ]


# Runs in the helper image (python3). It renders the key from pre-parsed segments with exactly
# the digest rule of `conveyor.core.cachekey`, restores a hit and writes cache.env.
CACHE_KEY_PROGRAM: Final = r"""
import glob, hashlib, json, os, re, shutil, sys
spec = json.loads(os.environ["CONVEYOR_CACHE_SPEC"])
work, store = sys.argv[1], sys.argv[2]
def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
def hash_files(patterns):
    found = {}
    for pattern in patterns:
        for path in glob.glob(os.path.join(work, pattern), recursive=True):
            if os.path.isfile(path) and not os.path.islink(path):
                found[os.path.relpath(path, work)] = file_digest(path)
    lines = sorted(f"{p}\0{d}\n" for p, d in found.items())
    return hashlib.sha256("".join(lines).encode()).hexdigest() if lines else ""
def safe_key(key):
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._") or "_"
    if len(cleaned) <= 200 and cleaned == key:
        return cleaned
    return cleaned[:191] + "-" + hashlib.sha256(key.encode()).hexdigest()[:8]
key = safe_key("".join(s if isinstance(s, str) else hash_files(s) for s in spec["segments"]))
entry = os.path.join(store, "cache", key) if store else ""
hit = bool(entry) and os.path.isdir(entry)
if hit:
    for name in os.listdir(entry):
        src, dst = os.path.join(entry, name), os.path.join(work, name)
        if os.path.isdir(src) and not os.path.islink(src):
            shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst, follow_symlinks=False)
with open(os.path.join(sys.argv[3], "cache.env"), "w") as f:
    f.write(f"CONVEYOR_CACHE_KEY={key}\nCONVEYOR_CACHE_HIT={'true' if hit else 'false'}\n")
print(f"conveyor: cache {'hit' if hit else 'miss'} ({key})")
"""


def cache_key_segments(template: str, context: RunContext) -> list[str | list[str]]:
    """The key template with context fields filled in: text, or a list of hashFiles patterns."""
    out: list[str | list[str]] = []
    for segment in parse_cache_key(template):
        if isinstance(segment, Literal):
            out.append(segment.text)
        elif isinstance(segment, ContextField):
            out.append(getattr(context, segment.name) or "")
        elif isinstance(segment, HashFiles):
            out.append(list(segment.patterns))
    return out


def _security_context(options: PodOptions) -> dict[str, Any]:
    if not options.restricted:
        return {}
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "runAsUser": options.run_as_user,
        "runAsGroup": options.run_as_user,
    }


def _pod_security_context(options: PodOptions) -> dict[str, Any]:
    if not options.restricted:
        return {"seccompProfile": {"type": "RuntimeDefault"}}
    return {
        "runAsNonRoot": True,
        "runAsUser": options.run_as_user,
        "runAsGroup": options.run_as_user,
        "fsGroup": options.run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container(name: str, image: str, options: PodOptions, **extra: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": image}
    if options.image_pull_policy:
        container["imagePullPolicy"] = options.image_pull_policy
    security = _security_context(options)
    if security:
        container["securityContext"] = security
    container.update(extra)
    return container


def job_manifest(
    run: RunRef,
    node: JobNode,
    attempt: int,
    options: PodOptions,
    artifacts_from: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The batch/v1 Job for one attempt of one pipeline job."""
    name = child_job_name(run.name, node.name, attempt)
    labels = job_labels(run.name, node.name, attempt)
    store = options.store_claim
    needs_store = bool(store) and (
        node.cache is not None or node.artifacts is not None or bool(artifacts_from)
    )
    mounts = [
        {"name": "workspace", "mountPath": WORKSPACE},
        {"name": "conveyor", "mountPath": CONTROL_DIR},
    ]
    if needs_store:
        mounts.append({"name": "store", "mountPath": STORE_DIR})
    volumes: list[dict[str, Any]] = [
        {"name": "workspace", "emptyDir": {}},
        {"name": "conveyor", "emptyDir": {}},
    ]
    if needs_store:
        volumes.append({"name": "store", "persistentVolumeClaim": {"claimName": store}})
    helper_env = [{"name": "HOME", "value": f"{CONTROL_DIR}/home"}, *GIT_SAFE_DIRECTORY]

    init: list[dict[str, Any]] = []
    if options.git_url:
        # Clone straight into the (still empty) workspace: copying over it afterwards would
        # try to change the mode of a directory the job's uid does not own.
        clone = (
            'set -e\nmkdir -p "$HOME"\n'
            f'git clone --quiet "$CONVEYOR_GIT_URL" {WORKSPACE}\n'
            f"cd {WORKSPACE}\n"
            'git -c advice.detachedHead=false checkout --quiet "$CONVEYOR_GIT_REVISION"\n'
            'echo "conveyor: checked out $CONVEYOR_GIT_REVISION from $CONVEYOR_GIT_URL"\n'
        )
        init.append(
            _container(
                "source",
                options.helper_image,
                options,
                command=["sh", "-c", clone],
                env=[
                    *helper_env,
                    {"name": "CONVEYOR_GIT_URL", "value": options.git_url},
                    {"name": "CONVEYOR_GIT_REVISION", "value": options.git_revision},
                ],
                workingDir=WORKSPACE,
                volumeMounts=mounts,
            )
        )
    if artifacts_from and needs_store:
        copies = [
            f'if [ -d "{artifact_dir(run, dep)}" ]; then cp -R "{artifact_dir(run, dep)}/." '
            f'{WORKSPACE}/; echo "conveyor: restored artifacts of {slug(dep)}"; fi'
            for dep in artifacts_from
        ]
        init.append(
            _container(
                "artifacts",
                options.helper_image,
                options,
                command=["sh", "-c", "set -e\n" + "\n".join(copies) + "\n"],
                workingDir=WORKSPACE,
                volumeMounts=mounts,
            )
        )
    if node.cache is not None:
        spec = {"segments": cache_key_segments(node.cache.key, run.context)}
        init.append(
            _container(
                "cache",
                options.helper_image,
                options,
                command=[
                    "python3",
                    "-c",
                    CACHE_KEY_PROGRAM,
                    WORKSPACE,
                    STORE_DIR if needs_store else "",
                    CONTROL_DIR,
                ],
                env=[*helper_env, {"name": "CONVEYOR_CACHE_SPEC", "value": json.dumps(spec)}],
                workingDir=WORKSPACE,
                volumeMounts=mounts,
            )
        )

    main = _container(
        MAIN_CONTAINER,
        node.image or options.default_image,
        options,
        command=["sh", "-c", main_script(node, run, options)],
        env=job_env(run, node, attempt),
        workingDir=WORKSPACE,
        volumeMounts=mounts,
        terminationMessagePath=TERMINATION_LOG,
        terminationMessagePolicy="File",
    )
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": _pod_security_context(options),
        "initContainers": init,
        "containers": [main],
        "volumes": volumes,
    }
    if not init:
        del pod_spec["initContainers"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": run.namespace,
            "labels": labels,
            "annotations": {
                ANNOTATION_JOB_NAME: node.name,
                ANNOTATION_STAGE: node.stage,
                ANNOTATION_RUN_NAME: run.name,
            },
            "ownerReferences": [owner_reference(run)],
        },
        "spec": {
            "backoffLimit": 0,  # a retry is a new Job (a new attempt), decided by the planner
            "activeDeadlineSeconds": max(1, math.ceil(node.timeout_seconds)),
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {ANNOTATION_JOB_NAME: node.name, ANNOTATION_RUN_NAME: run.name},
                },
                "spec": pod_spec,
            },
        },
    }


def cleanup_job_name(run_name: str) -> str:
    return child_job_name(run_name, "cleanup-artifacts", 0)


def artifact_cleanup_manifest(run: RunRef, options: PodOptions) -> dict[str, Any]:
    """A Job that deletes a finished run's artifacts from the store volume."""
    assert options.store_claim, "artifact cleanup needs the store claim"
    labels = {LABEL_RUN: label_value(run.name), LABEL_ROLE: ROLE_CLEANUP}
    target = f"{STORE_DIR}/artifacts/{run.name}"
    container = _container(
        MAIN_CONTAINER,
        options.helper_image,
        options,
        command=["sh", "-c", f'rm -rf "{target}"; echo "conveyor: removed {target}"'],
        volumeMounts=[{"name": "store", "mountPath": STORE_DIR}],
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": cleanup_job_name(run.name),
            "namespace": run.namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(run)],
        },
        "spec": {
            "backoffLimit": 3,
            "activeDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security_context(options),
                    "containers": [container],
                    "volumes": [
                        {
                            "name": "store",
                            "persistentVolumeClaim": {"claimName": options.store_claim},
                        }
                    ],
                },
            },
        },
    }


def event_manifest(
    involved: Mapping[str, Any], type_: str, reason: str, message: str, timestamp: str
) -> dict[str, Any]:
    """A core/v1 Event about `involved` (a run's body), as `kubectl describe` shows it."""
    meta = involved.get("metadata", {})
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{meta.get('name', 'run')}.",
            "namespace": meta.get("namespace"),
        },
        "involvedObject": {
            "apiVersion": involved.get("apiVersion", FULL_API_VERSION),
            "kind": involved.get("kind", "PipelineRun"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1000],
        "source": {"component": "conveyor"},
        "reportingComponent": "conveyor.dev/operator",
        "reportingInstance": "conveyor",
        "firstTimestamp": timestamp,
        "lastTimestamp": timestamp,
        "count": 1,
    }
