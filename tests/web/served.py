"""The web app served on 127.0.0.1 by its own event loop in a thread, for clients that block
(schemathesis uses requests) or live in another process (Chromium)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")


class ServedApp:
    """``with ServedApp(lambda: create_app(...)) as served: served.url``; stops cleanly on exit."""

    def __init__(self, make_app: Callable[[], web.Application]) -> None:
        self._make_app = make_app
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="served-app", daemon=True
        )
        self._runner: web.AppRunner | None = None
        self.app: web.Application | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        """Runs ``make()`` on the server's loop and waits for its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(_run(make), self.loop)
        return future.result(timeout)

    def __enter__(self) -> ServedApp:
        self._thread.start()

        async def start() -> None:
            self.app = self._make_app()
            self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=5.0)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        self.call(start)
        return self

    def __exit__(self, *_exc: Any) -> None:
        if self._runner is not None:
            self.call(self._runner.cleanup)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


async def _run(make: Callable[[], Awaitable[T]]) -> T:
    return await make()
