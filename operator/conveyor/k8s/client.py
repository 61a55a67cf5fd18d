"""The Kubernetes API, as Conveyor uses it: the one module that sends requests.

Everything is plain JSON dicts in and out (responses are read raw, not deserialized into
client models: faster, and what the pure builders and observers work with). Creates are
create-or-get (AlreadyExists is success) and deletes tolerate NotFound, so every call is safe
to repeat after a restart.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import yaml
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from conveyor.core.manifests import LABEL_RUN
from conveyor.core.models import API_GROUP, API_VERSION
from conveyor.core.naming import label_value

RUNS: Final = "pipelineruns"
PIPELINES: Final = "pipelines"
MERGE_PATCH: Final = "application/merge-patch+json"


class KubeError(Exception):
    """An API request failed; `status` is the HTTP status (0 when the server was unreachable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(err: ApiException) -> KubeError:
    message = err.reason or "request failed"
    try:
        body = json.loads(err.body or "{}")
        message = body.get("message") or message
    except (TypeError, ValueError):
        pass
    return KubeError(int(err.status or 0), message)


async def load_config(kubeconfig: str | None = None) -> None:
    """Use KUBECONFIG/`kubeconfig`, or the in-cluster service account when running in a pod."""
    if (
        kubeconfig is None
        and "KUBERNETES_SERVICE_HOST" in os.environ
        and not os.environ.get("KUBECONFIG")
    ):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        return
    await config.load_kube_config(config_file=kubeconfig)


def current_namespace(kubeconfig: str | None = None) -> str:
    """The namespace of the kubeconfig's current context, else `default`."""
    path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    path = path or os.path.expanduser("~/.kube/config")
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
        current = data.get("current-context")
        for item in data.get("contexts") or []:
            if item.get("name") == current:
                return str((item.get("context") or {}).get("namespace") or "default")
    except (OSError, yaml.YAMLError, AttributeError):
        pass
    return "default"


class Kube:
    """A connection to one cluster."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    @classmethod
    async def connect(cls, kubeconfig: str | None = None) -> Kube:
        await load_config(kubeconfig)
        return cls(client.ApiClient())

    async def close(self) -> None:
        await self.api.close()

    async def _json(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            response = await call(*args, _preload_content=False, **kwargs)
            data = await response.read()
        except ApiException as err:
            raise _error(err) from None
        except OSError as err:
            raise KubeError(0, f"cannot reach the API server: {err}") from None
        # Unpreloaded responses are not checked by the client: a 404 or 409 arrives as a
        # Status document with its HTTP code.
        if not 200 <= response.status <= 299:
            message = response.reason or "request failed"
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                message = json.loads(data).get("message") or message
            raise KubeError(int(response.status), message)
        return json.loads(data) if data else {}

    async def _maybe(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await self._json(call, *args, **kwargs)
        except KubeError as err:
            if err.status == 404:
                return None
            raise

    # -- runs and pipelines -------------------------------------------------------------------
    async def get_run(self, namespace: str, name: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self._maybe(
            self.custom.get_namespaced_custom_object,
            API_GROUP, API_VERSION, namespace, RUNS, name,
        )  # fmt: skip
        return result

    async def list_runs(self, namespace: str | None) -> list[dict[str, Any]]:
        if namespace:
            data = await self._json(
                self.custom.list_namespaced_custom_object, API_GROUP, API_VERSION, namespace, RUNS
            )
        else:
            data = await self._json(
                self.custom.list_cluster_custom_object, API_GROUP, API_VERSION, RUNS
            )
        return list(data.get("items", []))

    async def get_pipeline(self, namespace: str, name: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self._maybe(
            self.custom.get_namespaced_custom_object,
            API_GROUP, API_VERSION, namespace, PIPELINES, name,
        )  # fmt: skip
        return result

    async def patch_run_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        await self._json(
            self.custom.patch_namespaced_custom_object_status,
            API_GROUP, API_VERSION, namespace, RUNS, name, {"status": dict(status)},
            _content_type=MERGE_PATCH,
        )  # fmt: skip

    async def patch_run_annotations(
        self, namespace: str, name: str, annotations: Mapping[str, str | None]
    ) -> dict[str, Any]:
        """Set (or with None, remove) annotations on a run; returns the updated run."""
        result: dict[str, Any] = await self._json(
            self.custom.patch_namespaced_custom_object,
            API_GROUP, API_VERSION, namespace, RUNS, name,
            {"metadata": {"annotations": dict(annotations)}},
            _content_type=MERGE_PATCH,
        )  # fmt: skip
        return result

    # -- jobs and pods --------------------------------------------------------------------------
    async def _list_of_run(self, call: Any, namespace: str, run_name: str) -> list[dict[str, Any]]:
        data = await self._json(
            call, namespace, label_selector=f"{LABEL_RUN}={label_value(run_name)}"
        )
        return list(data.get("items", []))

    async def list_jobs(self, namespace: str, run_name: str) -> list[dict[str, Any]]:
        return await self._list_of_run(self.batch.list_namespaced_job, namespace, run_name)

    async def list_pods(self, namespace: str, run_name: str) -> list[dict[str, Any]]:
        return await self._list_of_run(self.core.list_namespaced_pod, namespace, run_name)

    async def _create_or_get(self, call: Any, manifest: Mapping[str, Any]) -> bool:
        """Create an object; False when it already exists, which is success: names are stable."""
        try:
            await self._json(call, manifest["metadata"]["namespace"], manifest)
        except KubeError as err:
            if err.status == 409:
                return False
            raise
        return True

    async def create_job(self, manifest: Mapping[str, Any]) -> bool:
        return await self._create_or_get(self.batch.create_namespaced_job, manifest)

    async def delete_job(self, namespace: str, name: str) -> None:
        await self._maybe(
            self.batch.delete_namespaced_job,
            name,
            namespace,
            body={"propagationPolicy": "Background"},
        )

    async def create_claim(self, manifest: Mapping[str, Any]) -> bool:
        call = self.core.create_namespaced_persistent_volume_claim
        return await self._create_or_get(call, manifest)

    async def patch_job(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        await self._maybe(
            self.batch.patch_namespaced_job, name, namespace, dict(patch),
            _content_type=MERGE_PATCH,
        )  # fmt: skip

    async def post_event(self, manifest: Mapping[str, Any]) -> None:
        await self._json(
            self.core.create_namespaced_event, manifest["metadata"]["namespace"], manifest
        )

    async def pod_log(self, namespace: str, pod: str, container: str) -> str:
        try:
            text: Any = await self.core.read_namespaced_pod_log(pod, namespace, container=container)
        except ApiException as err:
            raise _error(err) from None
        return str(text)

    async def follow_pod_log(
        self, namespace: str, pod: str, container: str
    ) -> AsyncIterator[bytes]:
        try:
            response: Any = await self.core.read_namespaced_pod_log(
                pod, namespace, container=container, follow=True, _preload_content=False
            )
        except ApiException as err:
            raise _error(err) from None
        async for chunk in response.content.iter_any():
            yield chunk
