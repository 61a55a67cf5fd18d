"""One reconciliation of one PipelineRun: observe, plan, act, write status.

Level-based and stateless: every call reads the run, its Jobs and pods from the API, asks the
pure planner what to do, creates Jobs by deterministic name (create-or-get), writes the status
from the `RunStatus` model and announces transitions. Nothing is kept in memory between calls,
so a restarted operator continues exactly where the API says the run is.

Once a run's status is terminal it is final: it is never re-planned (its Jobs may be deleted
by then), only cleaned up (leftover Jobs of a cancelled or timed-out run, expired artifacts).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pydantic import ValidationError

from conveyor.core.durations import parse_duration
from conveyor.core.graph import Graph, require_graph
from conveyor.core.manifests import (
    ANNOTATION_FAILURE_MESSAGE,
    ANNOTATION_FAILURE_REASON,
    ANNOTATION_JOB_NAME,
    LABEL_ROLE,
    ROLE_JOB,
    PodOptions,
    RunRef,
    artifact_cleanup_manifest,
    event_manifest,
    job_manifest,
    run_store_claim_manifest,
    store_claim,
)
from conveyor.core.models import (
    TERMINAL_RUN_PHASES,
    Condition,
    PipelineRun,
    PipelineSpec,
    RunStatus,
)
from conveyor.core.planner import (
    REASON_CANCELLED,
    REASON_RUN_TIMEOUT,
    Facts,
    GateDecision,
    JobObservation,
    Plan,
    StartJob,
    plan,
)
from conveyor.core.problems import InvalidSpecError, Problem
from conveyor.core.validation import parse_run, validate_spec_data
from conveyor.k8s.client import Kube, KubeError
from conveyor.k8s.observe import observe_run, parse_time
from conveyor.operator.admission import DECIDED_BY_PREFIX
from conveyor.operator.notify import Notifier
from conveyor.operator.settings import OperatorSettings
from conveyor.operator.transitions import Transition, transitions

log = logging.getLogger("conveyor.reconciler")

ANNOTATION_RESOLVED_SPEC: Final = "conveyor.dev/resolved-spec"
ANNOTATION_CANCEL: Final = "conveyor.dev/cancel"
ANNOTATION_RESTRICTED: Final = "conveyor.dev/restricted"
APPROVE_PREFIX: Final = "approve.conveyor.dev/"
REJECT_PREFIX: Final = "reject.conveyor.dev/"
REASON_INVALID: Final = "InvalidSpec"
_TRUE_WORDS = frozenset({"", "true", "yes", "y", "1", "ok", "approve", "approved"})


@dataclass(frozen=True)
class Outcome:
    """When to reconcile this run again without a change (None: only on a change)."""

    next_check_at: datetime | None = None
    gone: bool = False  # the run no longer exists
    idle: bool = False  # terminal with nothing left to do: the worker may stop


def now_utc() -> datetime:
    return datetime.now(UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dump_status(status: RunStatus) -> dict[str, Any]:
    data: dict[str, Any] = status.model_dump(mode="json", by_alias=True)
    return data


def _significant(data: Mapping[str, Any] | None) -> Any:
    # Durations of running things change with the clock alone; rewriting the status for them
    # would mean a write (and a watch event, and a reconcile) per reconcile.
    # A merge patch stores `null` as "absent": compare without nulls.
    if data is None:
        return None
    copy = _without_nulls(json.loads(json.dumps(data)))
    if copy.get("completedAt") is None:
        copy.pop("durationSeconds", None)
        for stage in copy.get("stages", []):
            for job in stage.get("jobs", []):
                if job.get("completedAt") is None:
                    job.pop("durationSeconds", None)
    return copy


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def managed_field_owner(body: Mapping[str, Any], annotation: str) -> tuple[str | None, str | None]:
    """The field manager that last set an annotation, and when (from managedFields)."""
    key = f"f:{annotation}"
    found: tuple[str | None, str | None] = (None, None)
    for entry in body.get("metadata", {}).get("managedFields") or []:
        fields = (entry.get("fieldsV1") or {}).get("f:metadata", {}).get("f:annotations", {})
        if key in fields:
            found = (entry.get("manager"), entry.get("time"))
    return found


def gate_decisions(
    body: Mapping[str, Any],
    previous: RunStatus | None,
    now: datetime,
    verified_only: bool = False,
) -> dict[str, GateDecision]:
    """Approvals and rejections from annotations, with who and when kept stable across calls.

    With the admission webhook on (`verified_only`), a decision counts only when the webhook
    recorded who made it: one made while the webhook was unreachable is not trusted.
    """
    annotations: Mapping[str, str] = body.get("metadata", {}).get("annotations") or {}
    recorded = {}
    if previous is not None:
        recorded = {s.name: s.approval for s in previous.stages if s.approval is not None}
    out: dict[str, GateDecision] = {}
    for key, value in annotations.items():
        if key.startswith(REJECT_PREFIX):
            stage, decision = key[len(REJECT_PREFIX) :], "Rejected"
        elif key.startswith(APPROVE_PREFIX):
            stage, decision = key[len(APPROVE_PREFIX) :], "Approved"
            if stage in out:  # a rejection of the same stage wins
                continue
        else:
            continue
        manager, when = managed_field_owner(body, key)
        by = annotations.get(DECIDED_BY_PREFIX + stage)
        if verified_only and by is None:
            continue
        word = value.strip()
        message: str | None = None
        if decision == "Rejected":
            message = word if word.lower() not in _TRUE_WORDS else None
        elif by is None and word.lower() not in _TRUE_WORDS:
            by = word
        by = by or manager
        at = parse_time(when) or now
        earlier = recorded.get(stage)
        if earlier is not None and earlier.decision == decision and earlier.at is not None:
            at = earlier.at
        out[stage] = GateDecision(decision, by=by, at=at, message=message)  # type: ignore[arg-type]
    return out


class Reconciler:
    """Observe -> plan -> act for one run at a time (the caller serialises calls per run)."""

    def __init__(self, kube: Kube, settings: OperatorSettings, notifier: Notifier) -> None:
        self.kube = kube
        self.settings = settings
        self.notifier = notifier
        self._background: set[asyncio.Task[None]] = set()

    # -- entry point ----------------------------------------------------------------------------
    async def reconcile(self, namespace: str, name: str) -> Outcome:
        body = await self.kube.get_run(namespace, name)
        if body is None or body.get("metadata", {}).get("deletionTimestamp"):
            return Outcome(gone=True)
        if body.get("kind") != "PipelineRun" or "namespace" not in body.get("metadata", {}):
            # Never judge a run by a garbled answer (an API server shutting down, say).
            raise KubeError(0, f"unexpected answer reading pipeline run {namespace}/{name}")
        now = now_utc()
        previous = _previous_status(body)
        if previous is not None and previous.phase in TERMINAL_RUN_PHASES:
            return await self.finished_run(body, previous, now)
        started_at = (previous.started_at if previous else None) or now

        spec, problems, wait = await self.resolve(body, now, started_at)
        if wait is not None:
            return await self.waiting_for_pipeline(body, previous, started_at, now, wait)
        if spec is None or problems:
            return await self.invalid(body, previous, started_at, now, problems)
        try:
            graph = require_graph(spec)
        except InvalidSpecError as err:
            return await self.invalid(body, previous, started_at, now, err.problems)

        run = PipelineRun.model_validate({k: v for k, v in body.items() if k != "status"})
        jobs = await self.kube.list_jobs(namespace, name)
        uid = body["metadata"]["uid"]
        jobs = [j for j in jobs if _owned_by(j, uid)]
        pods = await self.kube.list_pods(namespace, name)
        observed = await self.observe(namespace, jobs, pods, now)

        cancelled_at = now if _is_true(body, ANNOTATION_CANCEL) else None
        timeout = run.spec.timeout
        facts = Facts(
            graph=graph,
            context=run.spec.context,
            started_at=started_at,
            now=now,
            observed=observed,
            decisions=gate_decisions(body, previous, now, bool(self.settings.webhook_url)),
            trigger=spec.trigger,
            run_timeout_seconds=parse_duration(timeout) if timeout is not None else None,
            cancelled_at=cancelled_at,
        )
        result = plan(facts)
        ref = RunRef(name, namespace, uid, run.spec.context)
        options = self.pod_options(body, run, spec)
        try:
            if result.starts and store_claim(name, spec)[1]:
                manifest = run_store_claim_manifest(
                    ref, self.settings.run_store_size, self.settings.run_store_class
                )
                if await self.kube.create_claim(manifest):
                    log.info("%s/%s: created its store claim", namespace, name)
            await self.start_jobs(ref, result.starts, options)
        except KubeError as err:
            if err.status not in (400, 422):
                raise
            problem = Problem("spec", f"cannot create a Job: {err}")
            return await self.invalid(body, previous, started_at, now, [problem])
        await self.write_status(body, previous, result.status, graph)
        await self.stop_leftovers(namespace, jobs, result)
        return Outcome(next_check_at=result.next_check_at)

    # -- spec -------------------------------------------------------------------------------------
    async def resolve(
        self, body: Mapping[str, Any], now: datetime, started_at: datetime
    ) -> tuple[PipelineSpec | None, list[Problem], datetime | None]:
        """The run's pipeline spec, resolved once and kept in an annotation of the run."""
        meta = body.get("metadata", {})
        kept = (meta.get("annotations") or {}).get(ANNOTATION_RESOLVED_SPEC)
        if kept:
            try:
                return PipelineSpec.model_validate(json.loads(kept)), [], None
            except (ValueError, ValidationError):
                problem = Problem(
                    f"metadata.annotations[{ANNOTATION_RESOLVED_SPEC}]",
                    "the resolved pipeline spec kept on the run is not valid; remove the "
                    "annotation only if the run has not started",
                )
                return None, [problem], None
        run, problems = parse_run(body)
        if run is None:
            return None, problems, None
        spec: PipelineSpec | None = run.spec.pipeline_spec
        if spec is None:
            assert run.spec.pipeline_ref is not None
            ref = run.spec.pipeline_ref.name
            pipeline = await self.kube.get_pipeline(meta["namespace"], ref)
            if pipeline is None:
                deadline = started_at + timedelta(seconds=self.settings.pipeline_wait_seconds)
                if now < deadline:
                    return None, [], min(deadline, now + timedelta(seconds=3))
                message = f"pipeline {ref!r} not found in namespace {meta['namespace']!r}"
                return None, [Problem("spec.pipelineRef.name", message)], None
            raw = pipeline.get("spec") or {}
            problems = validate_spec_data(raw, f"pipeline {ref}: spec")
            if problems:
                return None, problems, None
            spec = PipelineSpec.model_validate(raw)
        data = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        await self.kube.patch_run_annotations(
            meta["namespace"], meta["name"], {ANNOTATION_RESOLVED_SPEC: json.dumps(data)}
        )
        return spec, [], None

    def pod_options(
        self, body: Mapping[str, Any], run: PipelineRun, spec: PipelineSpec
    ) -> PodOptions:
        annotations = body.get("metadata", {}).get("annotations") or {}
        restricted = annotations.get(ANNOTATION_RESTRICTED, "true").lower() != "false"
        git = run.spec.source.git if run.spec.source is not None else None
        s = self.settings
        return PodOptions(
            default_image=s.default_image,
            helper_image=s.helper_image,
            image_pull_policy=s.image_pull_policy,
            run_as_user=s.run_as_user,
            restricted=restricted,
            store_claim=store_claim(run.metadata.name or "", spec)[0],
            git_url=git.url if git is not None else None,
            git_revision=git.revision if git is not None else "HEAD",
        )

    # -- observation ------------------------------------------------------------------------------
    async def observe(
        self,
        namespace: str,
        jobs: list[dict[str, Any]],
        pods: list[dict[str, Any]],
        now: datetime,
    ) -> dict[str, JobObservation]:
        out: dict[str, JobObservation] = {}
        for full, seen in observe_run(jobs, pods).items():
            obs = seen.observation
            if seen.stuck_reason is not None:
                # The pod will not run (an image that cannot be pulled...): record why on the
                # Job, so the answer survives the pod, and end the Job without deleting it.
                job_name = seen.job["metadata"]["name"]
                await self.kube.patch_job(
                    namespace,
                    job_name,
                    {
                        "metadata": {
                            "annotations": {
                                ANNOTATION_FAILURE_REASON: seen.stuck_reason,
                                ANNOTATION_FAILURE_MESSAGE: (seen.stuck_message or "")[:500],
                            }
                        },
                        "spec": {"activeDeadlineSeconds": 1},
                    },
                )
                obs = JobObservation(
                    attempt=obs.attempt,
                    state="Failed",
                    started_at=obs.started_at,
                    completed_at=now,
                    reason=seen.stuck_reason,
                    message=seen.stuck_message,
                    job_name=obs.job_name,
                )
            if obs.state in ("Succeeded", "Failed") and obs.completed_at is None:
                # Finished, but no end time readable yet: the planner needs one.
                obs = replace(obs, completed_at=now)
            out[full] = obs
        return out

    # -- actions ---------------------------------------------------------------------------------
    async def start_jobs(self, ref: RunRef, starts: list[StartJob], options: PodOptions) -> None:
        if not starts:
            return
        limit = asyncio.Semaphore(self.settings.create_concurrency)

        async def create(action: StartJob) -> None:
            manifest = job_manifest(ref, action.job, action.attempt, options, action.artifacts_from)
            async with limit:
                created = await self.kube.create_job(manifest)
            if created:
                log.info(
                    "%s/%s: created Job %s", ref.namespace, ref.name, manifest["metadata"]["name"]
                )

        await asyncio.gather(*(create(a) for a in starts))

    async def stop_leftovers(
        self, namespace: str, jobs: list[dict[str, Any]], result: Plan
    ) -> None:
        # Only a cancelled or timed-out run deletes Jobs; a job past its own deadline is ended
        # by activeDeadlineSeconds and kept, so its observation (and attempt) survive.
        names = {s.name for s in result.stops if s.reason in (REASON_CANCELLED, REASON_RUN_TIMEOUT)}
        for job in jobs:
            meta = job["metadata"]
            full = (meta.get("annotations") or {}).get(ANNOTATION_JOB_NAME)
            if full in names and not _job_finished(job):
                await self.kube.delete_job(namespace, meta["name"])

    # -- status ----------------------------------------------------------------------------------
    async def write_status(
        self,
        body: Mapping[str, Any],
        previous: RunStatus | None,
        status: RunStatus,
        graph: Graph | None,
    ) -> None:
        meta = body["metadata"]
        data = dump_status(status)
        if _significant(body.get("status")) != _significant(data):
            await self.kube.patch_run_status(meta["namespace"], meta["name"], data)
            log.debug("%s/%s: status %s", meta["namespace"], meta["name"], status.phase)
        approvers: dict[str, list[str]] = {}
        if graph is not None:
            approvers = {s.name: list(s.gate.approvers) for s in graph.stages if s.gate}
        for change in transitions(meta["name"], previous, status, approvers):
            self.announce(body, change)

    def announce(self, body: Mapping[str, Any], change: Transition) -> None:
        """Post an Event and send a notification, in the background (never blocks a run)."""
        manifest = event_manifest(body, change.type, change.reason, change.message, _iso(now_utc()))
        self._spawn(self._post_event(manifest))
        if change.notification is not None:
            meta = body.get("metadata", {})
            payload = {**change.notification, "namespace": meta.get("namespace")}
            self.notifier.send(payload)

    async def _post_event(self, manifest: dict[str, Any]) -> None:
        try:
            await self.kube.post_event(manifest)
        except KubeError as err:
            log.warning("cannot post event %s: %s", manifest.get("reason"), err)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        if self._background:
            await asyncio.wait(set(self._background), timeout=5)

    async def invalid(
        self,
        body: Mapping[str, Any],
        previous: RunStatus | None,
        started_at: datetime,
        now: datetime,
        problems: list[Problem],
    ) -> Outcome:
        message = "; ".join(str(p) for p in problems) or "the run is not valid"
        status = RunStatus(
            phase="Failed",
            started_at=started_at,
            completed_at=now,
            duration_seconds=round(max(0.0, (now - started_at).total_seconds()), 3),
            conditions=[
                Condition(
                    type="Succeeded",
                    status="False",
                    reason=REASON_INVALID,
                    message=message,
                    last_transition_time=now,
                )
            ],
        )
        meta = body["metadata"]
        await self.kube.patch_run_status(meta["namespace"], meta["name"], dump_status(status))
        self.announce(body, Transition(REASON_INVALID, message, "Warning"))
        for change in transitions(meta["name"], previous, status):
            self.announce(body, change)
        log.info("%s/%s: invalid: %s", meta["namespace"], meta["name"], message)
        return Outcome(idle=True)

    async def waiting_for_pipeline(
        self,
        body: Mapping[str, Any],
        previous: RunStatus | None,
        started_at: datetime,
        now: datetime,
        retry_at: datetime,
    ) -> Outcome:
        ref = body.get("spec", {}).get("pipelineRef", {}).get("name")
        status = RunStatus(
            phase="Pending",
            started_at=started_at,
            conditions=[
                Condition(
                    type="Succeeded",
                    status="Unknown",
                    reason="PipelineNotFound",
                    message=f"waiting for pipeline {ref!r} to exist",
                    last_transition_time=started_at,
                )
            ],
        )
        await self.write_status(body, previous, status, None)
        return Outcome(next_check_at=retry_at)

    # -- finished runs ---------------------------------------------------------------------------
    async def finished_run(
        self, body: Mapping[str, Any], status: RunStatus, now: datetime
    ) -> Outcome:
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        jobs = [j for j in await self.kube.list_jobs(namespace, name) if _owned_by(j, meta["uid"])]
        if status.phase == "Cancelled" or _timed_out(status):
            for job in jobs:
                if _is_pipeline_job(job) and not _job_finished(job):
                    await self.kube.delete_job(namespace, job["metadata"]["name"])
        return await self.expire_artifacts(body, status, jobs, now)

    async def expire_artifacts(
        self,
        body: Mapping[str, Any],
        status: RunStatus,
        jobs: list[dict[str, Any]],
        now: datetime,
    ) -> Outcome:
        kept = (body["metadata"].get("annotations") or {}).get(ANNOTATION_RESOLVED_SPEC)
        if not kept or status.completed_at is None:
            return Outcome(idle=True)
        try:
            spec = PipelineSpec.model_validate(json.loads(kept))
        except (ValueError, ValidationError):
            return Outcome(idle=True)
        claim = store_claim(body["metadata"]["name"], spec)[0]
        if claim is None:
            return Outcome(idle=True)
        expiries = [
            parse_duration(job.artifacts.expire_in)
            if job.artifacts.expire_in is not None
            else self.settings.artifact_expiry_seconds
            for stage in spec.stages
            for job in stage.jobs
            if job.artifacts is not None
        ] + [
            parse_duration(job.artifacts.expire_in)
            if job.artifacts.expire_in is not None
            else self.settings.artifact_expiry_seconds
            for job in spec.finally_
            if job.artifacts is not None
        ]
        if not expiries:
            return Outcome(idle=True)
        # One cleanup for the run once its longest-lived artifacts expire: dependents read
        # artifacts only while the run is going, so nothing needs them earlier.
        expire_at = status.completed_at + timedelta(seconds=max(expiries))
        if now < expire_at:
            return Outcome(next_check_at=expire_at)
        meta = body["metadata"]
        ref = RunRef(meta["name"], meta["namespace"], meta["uid"])
        options = PodOptions(
            helper_image=self.settings.helper_image,
            image_pull_policy=self.settings.image_pull_policy,
            run_as_user=self.settings.run_as_user,
            store_claim=claim,
        )
        await self.kube.create_job(artifact_cleanup_manifest(ref, options))
        return Outcome(idle=True)


def _previous_status(body: Mapping[str, Any]) -> RunStatus | None:
    raw = body.get("status")
    if not raw:
        return None
    try:
        return RunStatus.model_validate(raw)
    except ValidationError:
        return None


def _is_true(body: Mapping[str, Any], annotation: str) -> bool:
    value = (body.get("metadata", {}).get("annotations") or {}).get(annotation, "")
    return value.strip().lower() in ("true", "yes", "1")


def _owned_by(job: Mapping[str, Any], uid: str) -> bool:
    refs = job.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)


def _is_pipeline_job(job: Mapping[str, Any]) -> bool:
    labels: Mapping[str, str] = job.get("metadata", {}).get("labels") or {}
    return labels.get(LABEL_ROLE, ROLE_JOB) == ROLE_JOB


def _job_finished(job: Mapping[str, Any]) -> bool:
    for cond in job.get("status", {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return True
    return False


def _timed_out(status: RunStatus) -> bool:
    return any(j.reason == REASON_RUN_TIMEOUT for s in status.stages for j in s.jobs) or any(
        "timed out" in c.message for c in status.conditions if c.reason == "Failed"
    )
