"""One reconciliation loop per PipelineRun: woken by watch events, or at the planner's next check.

Events about a run, its Jobs and its pods only *poke* the run's worker; the worker coalesces
pokes that arrive while it reconciles into one more pass. Different runs reconcile in parallel,
one run never concurrently with itself. A failed pass is retried with capped exponential
backoff, so a broken run cannot storm the API server or starve the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from conveyor.k8s.client import KubeError
from conveyor.operator.reconciler import Outcome

log = logging.getLogger("conveyor.workers")

Key = tuple[str, str]  # (namespace, name)
ReconcileFn = Callable[[str, str], Awaitable[Outcome]]
MAX_BACKOFF_SECONDS = 60.0


class Workers:
    def __init__(self, reconcile: ReconcileFn) -> None:
        self.reconcile = reconcile
        self._wake: dict[Key, asyncio.Event] = {}
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        self.passes = 0

    def poke(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        event = self._wake.get(key)
        if event is None:
            event = self._wake[key] = asyncio.Event()
            self._tasks[key] = asyncio.create_task(self._loop(key, event), name=f"run {key}")
        event.set()

    def forget(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        task = self._tasks.pop(key, None)
        self._wake.pop(key, None)
        if task is not None:
            task.cancel()

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._wake.clear()

    async def _loop(self, key: Key, wake: asyncio.Event) -> None:
        namespace, name = key
        next_at: datetime | None = None
        failures = 0
        while True:
            if not wake.is_set():
                timeout = None
                if next_at is not None:
                    timeout = max(0.0, (next_at - datetime.now(UTC)).total_seconds())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout)
            wake.clear()
            try:
                outcome = await self.reconcile(namespace, name)
                self.passes += 1
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as err:
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2**failures)
                if isinstance(err, KubeError):
                    log.warning("%s/%s: %s; retrying in %.1fs", namespace, name, err, delay)
                else:
                    log.exception(
                        "%s/%s: reconcile failed; retrying in %.1fs", namespace, name, delay
                    )
                next_at = datetime.now(UTC) + timedelta(seconds=delay)
                continue
            next_at = outcome.next_check_at
            # Leave when nothing is scheduled and no poke arrived meanwhile (all state is in the
            # API; the next event starts a new worker). The check and the removal happen with
            # no await in between, so no poke can be lost.
            if outcome.gone or (next_at is None and not wake.is_set()):
                if self._wake.get(key) is wake:
                    del self._wake[key]
                    self._tasks.pop(key, None)
                return
