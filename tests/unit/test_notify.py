"""Notifications are POSTed in the background and retried until the receiver accepts them."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from conveyor.operator.notify import Notifier


def test_retried_with_backoff_until_accepted() -> None:
    received: list[dict[str, Any]] = []

    async def scenario() -> None:
        async def hook(request: web.Request) -> web.Response:
            received.append(await request.json())
            return web.Response(status=503 if len(received) < 3 else 204)

        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        notifier = Notifier(f"http://127.0.0.1:{port}/hook", attempts=5, first_delay=0.01)
        notifier.send({"type": "pipeline_complete", "text": "done"})  # returns at once
        assert received == []
        await notifier.close(grace=5)
        await runner.cleanup()

    asyncio.run(scenario())
    assert len(received) == 3
    assert received[-1] == {"type": "pipeline_complete", "text": "done"}


def test_without_a_url_nothing_is_sent() -> None:
    async def scenario() -> None:
        notifier = Notifier(None)
        notifier.send({"text": "x"})
        await notifier.close()

    asyncio.run(scenario())
