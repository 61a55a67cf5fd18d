"""Notifications to an optional webhook (Slack-compatible `text` plus structured fields).

Delivery happens in the background with retries and backoff; it never blocks a run, and a
notification that still fails after its retries is logged and dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

log = logging.getLogger("conveyor.notify")


class Notifier:
    def __init__(self, url: str | None, attempts: int = 6, first_delay: float = 1.0) -> None:
        self.url = url
        self.attempts = attempts
        self.first_delay = first_delay
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def send(self, payload: Mapping[str, Any]) -> None:
        """Queue one notification; returns at once."""
        if not self.url:
            return
        task = asyncio.create_task(self._deliver(dict(payload)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, payload: dict[str, Any]) -> None:
        assert self.url is not None
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        delay = self.first_delay
        for attempt in range(1, self.attempts + 1):
            try:
                async with self._session.post(self.url, json=payload) as response:
                    if response.status < 500 and response.status != 429:
                        if response.status >= 400:
                            log.warning("notification refused (%s): %s", response.status, payload)
                        return
                    problem = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as err:
                problem = str(err) or type(err).__name__
            if attempt < self.attempts:
                log.info("notification failed (%s); retrying in %.0fs", problem, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
        log.warning("notification dropped after %d attempts: %s", self.attempts, payload)

    async def close(self, grace: float = 5.0) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        for task in set(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()
