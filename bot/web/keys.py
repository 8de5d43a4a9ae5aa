"""Typed keys of what the web application holds: set once by ``create_app``, read by handlers."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.live import LiveFeed
from bot.settings import Settings
from bot.web.auth import TokenCheck
from bot.web.bots import BotManager
from bot.web.metrics import Metrics
from storage import Storage, StoredRoom

SETTINGS = web.AppKey("settings", Settings)
STORAGE = web.AppKey("storage", Storage)
BOTS = web.AppKey("bots", BotManager)
FEED = web.AppKey("feed", LiveFeed)
METRICS = web.AppKey("metrics", Metrics)
TOKEN_CHECK = web.AppKey("token_check", TokenCheck)
#: The token ``create_app`` created on first start (to show once), else ``None``.
NEW_API_TOKEN: web.AppKey[str | None] = web.AppKey("new_api_token")
#: Set when the server shuts down: open event streams end instead of holding the shutdown.
CLOSING = web.AppKey("closing", asyncio.Event)
#: Held while a bot is checked and started: two requests for one meeting cannot both start one.
START_LOCK = web.AppKey("start_lock", asyncio.Lock)
#: The rooms opened through the API (``bot.web.api_rooms``), by name: title and teacher token.
OPEN_ROOMS: web.AppKey[dict[str, StoredRoom]] = web.AppKey("open_rooms", dict)
