"""kopf handlers: thin. They only route watch events to the run's worker.

PipelineRuns, and the Jobs and pods a run owns, all poke the run's reconciliation loop
(`workers.Workers`); the loop observes, plans and acts. kopf keeps its progress and finalizer
under Conveyor's own `conveyor.dev` prefix, and no handler returns a value (status is written
from the `RunStatus` model only).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kopf

from conveyor.core.manifests import ANNOTATION_RUN_NAME, LABEL_RUN
from conveyor.core.models import API_GROUP, API_VERSION
from conveyor.k8s.client import Kube
from conveyor.operator import admission
from conveyor.operator.notify import Notifier
from conveyor.operator.reconciler import Reconciler
from conveyor.operator.settings import OperatorSettings
from conveyor.operator.workers import Workers

log = logging.getLogger("conveyor.operator")


@dataclass
class App:
    kube: Kube
    reconciler: Reconciler
    workers: Workers
    notifier: Notifier


def configure(settings: kopf.OperatorSettings) -> None:
    """Conveyor's own annotation prefix and finalizer; no kopf Events for handler logs."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="conveyor.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="conveyor.dev", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "conveyor.dev/finalizer"
    settings.posting.enabled = False
    settings.watching.connect_timeout = 60
    settings.watching.server_timeout = 600


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    configure(settings)
    config: OperatorSettings = memo.get("config") or OperatorSettings()
    kube = await Kube.connect(config.kubeconfig)
    notifier = Notifier(config.notify_url)
    reconciler = Reconciler(kube, config, notifier)
    memo["app"] = App(kube, reconciler, Workers(reconciler.reconcile), notifier)
    log.info("conveyor operator started")


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    app: App | None = memo.get("app")
    if app is None:
        return
    await app.workers.stop()
    await app.reconciler.close()
    await app.notifier.close()
    await app.kube.close()


def _app(memo: kopf.Memo) -> App:
    app: App = memo["app"]
    return app


@kopf.on.event(API_GROUP, API_VERSION, "pipelineruns")
async def run_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    meta = event["object"].get("metadata", {})
    namespace, name = meta.get("namespace"), meta.get("name")
    if not namespace or not name:
        return
    if event["type"] == "DELETED":
        _app(memo).workers.forget(namespace, name)
    else:
        _app(memo).workers.poke(namespace, name)


def _run_of_job(body: kopf.Body) -> str | None:
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == "PipelineRun" and ref.get("apiVersion", "").startswith(API_GROUP):
            return str(ref.get("name"))
    return None


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_RUN: kopf.PRESENT})
async def job_event(body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    run = _run_of_job(body)
    if run and namespace:
        _app(memo).workers.poke(namespace, run)


@kopf.on.event("", "v1", "pods", labels={LABEL_RUN: kopf.PRESENT})
async def pod_event(body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    run = (body.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_RUN_NAME)
    if run and namespace:
        _app(memo).workers.poke(namespace, run)


def register_admission(settings_: OperatorSettings) -> None:
    """The gate-approval webhook (`--webhook-url`): kopf serves it and manages its config."""

    @kopf.on.startup()
    async def admission_server(settings: kopf.OperatorSettings, **_: Any) -> None:
        url = urlsplit(settings_.webhook_url or "")
        cert = settings_.webhook_cert
        settings.admission.server = kopf.WebhookServer(
            addr=settings_.webhook_listen or url.hostname,
            port=url.port or 443,
            host=url.hostname,
            certfile=cert,
            pkeyfile=settings_.webhook_key,
            cadata=Path(cert).read_bytes() if cert else None,
        )
        settings.admission.managed = "conveyor.dev"

    @kopf.on.mutate(API_GROUP, API_VERSION, "pipelineruns", operations=["CREATE", "UPDATE"],
                    id="identity", ignore_failures=True)  # fmt: skip
    def identity(body: kopf.Body, userinfo: kopf.UserInfo, patch: kopf.Patch, **kw: Any) -> None:
        if not admission.serves(settings_.namespaces, body.metadata.namespace or ""):
            return
        old, operation = kw.get("old"), kw.get("operation")
        old_annotations = dict((old or {}).get("metadata", {}).get("annotations") or {})
        changes = admission.identity_patch(
            operation or "", old_annotations, dict(body.metadata.annotations), userinfo["username"]
        )
        if changes:
            patch.setdefault("metadata", {}).setdefault("annotations", {}).update(changes)

    @kopf.on.validate(API_GROUP, API_VERSION, "pipelineruns", operations=["UPDATE"],
                      id="approvers", ignore_failures=True)  # fmt: skip
    async def approvers(body: kopf.Body, userinfo: kopf.UserInfo, memo: Any, **kw: Any) -> None:
        # The webhook configuration is cluster-wide; runs this operator does not serve are
        # another operator's business.
        if not admission.serves(settings_.namespaces, body.metadata.namespace or ""):
            return
        old_body = kw.get("old") or {}
        old_annotations = dict(old_body.get("metadata", {}).get("annotations") or {})
        stages = admission.new_decisions(old_annotations, dict(body.metadata.annotations))
        if not stages:
            return
        spec = admission.run_spec(old_body) or admission.run_spec(body)
        if spec is None:
            ref = (body.get("spec") or {}).get("pipelineRef") or {}
            pipeline = await _app(memo).kube.get_pipeline(
                body.metadata.namespace or "", ref.get("name", "")
            )
            spec = (pipeline or {}).get("spec") or {}
        gates = admission.gate_approvers(spec)
        creator = old_annotations.get(admission.CREATED_BY) or (
            (body.get("spec") or {}).get("context") or {}
        ).get("triggeredBy")
        for stage in stages:
            why = admission.refusal(
                userinfo["username"], list(userinfo.get("groups") or []), creator, stage, gates
            )
            if why is not None:
                raise kopf.AdmissionError(why, code=403)
