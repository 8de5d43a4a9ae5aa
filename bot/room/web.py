"""The room's routes on the app: the page, its static files, the signalling socket, shutdown.

``setup_room(app, settings)`` is the one call the main app makes; it returns the registry (also at
``app[ROOM_REGISTRY]``) through which rooms are created and bots join.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.room.room import RoomRegistry
from bot.room.settings import ROOM_NAME_PATTERN, RoomSettings
from bot.room.signalling import handle_room_socket
from bot.room.teacher_feed import TeacherFeeds
from bot.web.keys import BOTS

ROOM_REGISTRY: web.AppKey[RoomRegistry] = web.AppKey("room_registry", RoomRegistry)
STATIC_DIR = Path(__file__).resolve().parent / "static"

#: The page may talk to its own origin only (the socket included); no inline script.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; "
        "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",  # the teacher link must not leak in a Referer header
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def room_settings_of(settings: Any) -> RoomSettings:
    """``settings`` as ``RoomSettings``: a ``RoomSettings``, ``None`` (defaults), or the app's
    ``Settings``: its ``room`` attribute when it has one, else defaults for its ``host``."""
    if settings is None:
        return RoomSettings()
    if isinstance(settings, RoomSettings):
        return settings
    nested = getattr(settings, "room", None)
    if isinstance(nested, RoomSettings):
        return nested
    host = getattr(settings, "host", None)
    if isinstance(host, str):
        return RoomSettings.for_host(host)
    raise TypeError(
        f"Expected RoomSettings or the app's Settings. Received: {type(settings).__name__}"
    )


def setup_room(app: web.Application, settings: Any = None) -> RoomRegistry:
    """Add the built-in room's routes to ``app`` and close every room on shutdown."""
    registry = RoomRegistry(room_settings_of(settings))
    app[ROOM_REGISTRY] = registry
    name = "{name:" + ROOM_NAME_PATTERN + "}"

    async def page(request: web.Request) -> web.Response:
        room = registry.get(request.match_info["name"])
        if room is None:
            raise web.HTTPNotFound(
                text=f"No room called {request.match_info['name']!r} is open here."
            )
        template = (STATIC_DIR / "room.html").read_text(encoding="utf-8")
        config = json.dumps({"room": room.name, "teacherName": room.teacher_name})
        body = template.replace("{{room}}", html.escape(room.name)).replace(
            "{{config}}", html.escape(config)
        )
        return web.Response(text=body, content_type="text/html", headers=_PAGE_HEADERS)

    def find_meeting(room_name: str) -> str | None:
        """The meeting the room's bot opened, while it is in the room."""
        bots = app.get(BOTS)
        for info in bots.list() if bots is not None else ():
            if info.state.active and info.meeting_id and info.meeting_url == f"builtin:{room_name}":
                return info.meeting_id
        return None

    feeds = TeacherFeeds(find_meeting, lambda meeting_id: app[BOTS].subscribe(meeting_id))

    async def socket(request: web.Request) -> web.StreamResponse:
        return await handle_room_socket(request, registry, feeds)

    async def close_rooms(_: web.Application) -> None:
        await feeds.aclose()
        await registry.close()

    app.router.add_get(f"/rooms/{name}", page, name="room-page")
    app.router.add_get(f"/rooms/{name}/ws", socket, name="room-socket")
    app.router.add_static("/room-static/", STATIC_DIR, name="room-static")
    app.on_shutdown.append(close_rooms)
    return registry
