"""The aiohttp application: REST API, dashboard, ``/metrics`` and (if installed) the built-in room.

``create_app(settings)`` is the only factory: it takes the settings once and everything else
explicitly, so a test can hand it a seeded ``Storage`` and a fake ``BotManager``. Resources the
app creates itself (the storage, the bot runtime) are opened on startup and closed on cleanup;
resources handed in belong to the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from bot.live import LiveFeed
from bot.settings import Settings
from bot.web import api
from bot.web.auth import auth_middleware, ensure_api_token
from bot.web.bots import BotManager, UnavailableBotManager
from bot.web.dashboard import security_headers, setup_dashboard
from bot.web.errors import error_middleware
from bot.web.hosts import host_middleware
from bot.web.keys import (
    BOTS,
    CLOSING,
    FEED,
    METRICS,
    NEW_API_TOKEN,
    SETTINGS,
    START_LOCK,
    STORAGE,
    TOKEN_CHECK,
)
from bot.web.metrics import CONTENT_TYPE, Metrics
from storage import Storage

logger = logging.getLogger(__name__)

#: Largest request body accepted (the API's bodies are a few hundred bytes).
MAX_BODY_BYTES = 64 * 1024
HISTORY_ONLY = "Expected a server that runs bots. Received: one started with --history-only"


def create_app(
    settings: Settings,
    *,
    storage: Storage | None = None,
    bots: BotManager | None = None,
    feed: LiveFeed | None = None,
    metrics: Metrics | None = None,
) -> web.Application:
    """The whole web application. Without ``storage`` it opens ``settings.database_url`` on
    startup (migrating it); without ``bots`` it starts the bot runtime (inference process
    included) unless ``settings.run_bots`` is off. Creates the API token on first start:
    ``app[NEW_API_TOKEN]`` then holds it, to be shown once."""
    check, new_token = ensure_api_token(settings)
    app = web.Application(
        middlewares=[
            host_middleware(settings.host_names()),
            security_headers,
            error_middleware,
            auth_middleware(check),
        ],
        client_max_size=MAX_BODY_BYTES,
    )
    app[SETTINGS] = settings
    app[TOKEN_CHECK] = check
    app[NEW_API_TOKEN] = new_token
    app[FEED] = feed if feed is not None else LiveFeed()
    app[METRICS] = metrics if metrics is not None else Metrics()
    app[CLOSING] = asyncio.Event()
    app[START_LOCK] = asyncio.Lock()
    if storage is not None:
        app[STORAGE] = storage
    if bots is not None:
        app[BOTS] = bots
    app.cleanup_ctx.append(_resources(owns_storage=storage is None, owns_bots=bots is None))
    app.on_shutdown.append(_end_live_streams)

    api.setup_routes(app)
    setup_dashboard(app)
    app.router.add_get("/metrics", get_metrics)
    setup_room = _room_setup()
    if setup_room is not None:
        setup_room(app, settings)
    return app


def _room_registry_key() -> Any:
    if importlib.util.find_spec("bot.room") is None:
        return None
    return importlib.import_module("bot.room").ROOM_REGISTRY


def _room_setup() -> Callable[[web.Application, Settings], None] | None:
    """``bot.room.setup_room`` when the built-in room is installed (a failing import raises)."""
    if importlib.util.find_spec("bot.room") is None:
        return None
    room = importlib.import_module("bot.room")
    setup: Callable[[web.Application, Settings], None] | None = getattr(room, "setup_room", None)
    if setup is None:
        logger.warning("bot.room has no setup_room(app, settings); the built-in room is not served")
    return setup


def _resources(
    *, owns_storage: bool, owns_bots: bool
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def resources(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        async with contextlib.AsyncExitStack() as stack:
            if owns_storage:
                app[STORAGE] = await asyncio.to_thread(Storage.open, settings.database_url)
                stack.push_async_callback(asyncio.to_thread, app[STORAGE].close)
            if owns_bots and settings.run_bots and settings.launcher == "ray":
                from bot.launch.ray_manager import ray_bot_manager  # bots on a Ray cluster

                manager = ray_bot_manager(settings, app[FEED], app[METRICS])
                app[BOTS] = await stack.enter_async_context(manager)
            elif owns_bots and settings.run_bots:
                from bot.web.runtime_bots import runtime_bot_manager

                rooms = app.get(_room_registry_key())  # the built-in room, when served
                manager = runtime_bot_manager(
                    app[STORAGE],
                    app[FEED],
                    app[METRICS],
                    rooms,
                    max_bots=settings.max_bots,
                    media_workers=settings.media_workers,
                    mode=settings.mode,
                )
                app[BOTS] = await stack.enter_async_context(manager)
            elif owns_bots:
                app[BOTS] = UnavailableBotManager(app[FEED], HISTORY_ONLY)
            stack.callback(app[METRICS].add_collector(_bot_counts(app[BOTS])))
            yield

    return resources


def _bot_counts(bots: BotManager) -> Callable[[Metrics], None]:
    """Bots running is known to the manager: read it at scrape time rather than asking the
    session to keep a second count."""

    def collect(metrics: Metrics) -> None:
        metrics.bots_running.set(sum(1 for info in bots.list() if info.state.active))

    return collect


async def _end_live_streams(app: web.Application) -> None:
    # Open event streams would hold the shutdown until they time out.
    app[CLOSING].set()


async def get_metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body.encode("utf-8"), headers={"Content-Type": CONTENT_TYPE})
