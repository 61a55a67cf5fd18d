"""Operator settings: command-line flags with `CONVEYOR_*` environment variables as defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from conveyor.core.manifests import DEFAULT_HELPER_IMAGE, DEFAULT_IMAGE


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip().isdigit() else default


@dataclass(frozen=True)
class OperatorSettings:
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    kubeconfig: str | None = None
    default_image: str = field(
        default_factory=lambda: os.environ.get("CONVEYOR_DEFAULT_IMAGE", DEFAULT_IMAGE)
    )
    helper_image: str = field(
        default_factory=lambda: os.environ.get("CONVEYOR_HELPER_IMAGE", DEFAULT_HELPER_IMAGE)
    )
    image_pull_policy: str | None = field(
        default_factory=lambda: os.environ.get("CONVEYOR_IMAGE_PULL_POLICY") or None
    )
    run_as_user: int = field(default_factory=lambda: _env_int("CONVEYOR_RUN_AS_USER", 1000))
    notify_url: str | None = field(
        default_factory=lambda: os.environ.get("CONVEYOR_NOTIFY_URL") or None
    )
    # How long a run waits for its referenced Pipeline to appear (GitOps tools may apply the
    # run first) before it fails with InvalidSpec.
    pipeline_wait_seconds: float = 30.0
    # Artifacts of jobs without `expireIn` are removed this long after the run ends.
    artifact_expiry_seconds: float = 7 * 86400.0
    # The gate-approval admission webhook: the URL the API server calls (https, this host),
    # its serving certificate and key; disabled when no URL is set.
    webhook_url: str | None = None
    webhook_cert: str | None = None
    webhook_key: str | None = None
    webhook_listen: str | None = None  # address to bind (default: the URL's host)
    # Concurrent Job creations per run (a wide fan-out starts in parallel, within reason).
    create_concurrency: int = 16
    # A run that keeps caches or artifacts but names no `cache.claimName` gets its own claim
    # of this size (in the default StorageClass unless one is named).
    run_store_size: str = field(
        default_factory=lambda: os.environ.get("CONVEYOR_RUN_STORE_SIZE", "1Gi")
    )
    run_store_class: str | None = field(
        default_factory=lambda: os.environ.get("CONVEYOR_RUN_STORE_CLASS") or None
    )
