"""The room routes of the REST API: open a built-in class room with a title, list, show, close.

A room lives in the server's built-in room registry (``bot/room``) and in storage: the storage row
keeps the title and the teacher link's token, so open rooms come back, with the same links, after
a restart. The room's name (``math-7b-3f9a0c``: the title's letters and a random tail) is what
``builtin:NAME`` invites the bot into.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
import unicodedata
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from bot.web.errors import ApiError, bad_request, not_found
from bot.web.inputs import json_body, only_params, room_registry
from bot.web.keys import OPEN_ROOMS, STORAGE
from storage import StoredRoom

logger = logging.getLogger(__name__)

#: Longest room title accepted.
MAX_TITLE_LENGTH = 200
#: Room names: the title's letters, digits and dashes (at most this long) and a random tail.
MAX_SLUG_LENGTH = 40
_NEW_ROOM_KEYS = {"title"}


def setup_room_routes(app: web.Application) -> None:
    """The routes, and the start-up step that opens the stored rooms again. Call after the
    storage's start-up step is registered (it runs first)."""
    app[OPEN_ROOMS] = {}
    app.router.add_get("/api/rooms", list_rooms)
    app.router.add_post("/api/rooms", open_room)
    app.router.add_get("/api/rooms/{room}", get_room)
    app.router.add_delete("/api/rooms/{room}", close_room)
    app.cleanup_ctx.append(_reopen_stored_rooms)


def _require_registry(app: web.Application) -> Any:
    registry = room_registry(app)
    if registry is None:
        raise ApiError(503, "Expected a server with the built-in room. Received: none installed")
    return registry


async def _reopen_stored_rooms(app: web.Application) -> AsyncIterator[None]:
    registry = room_registry(app)
    if registry is not None:
        for stored in await asyncio.to_thread(app[STORAGE].open_rooms):
            try:
                room = registry.create(stored.name)
            except ValueError as error:
                logger.warning("stored room %s not reopened: %s", stored.name, error)
                continue
            room.teacher_token = stored.teacher_token  # the links handed out before stay valid
            app[OPEN_ROOMS][stored.name] = stored
        if app[OPEN_ROOMS]:
            logger.info("reopened %d stored room(s)", len(app[OPEN_ROOMS]))
    yield


def room_json(request: web.Request, room: StoredRoom) -> dict[str, Any]:
    base = f"{request.scheme}://{request.host}"
    return {
        "room": room.name,
        "title": room.title,
        "teacher_url": f"{base}/rooms/{room.name}#teacher={room.teacher_token}",
        "student_url": f"{base}/rooms/{room.name}",
    }


async def list_rooms(request: web.Request) -> web.Response:
    only_params(request.query, set())
    rooms = sorted(request.app[OPEN_ROOMS].values(), key=lambda room: room.created_at)
    return web.json_response({"rooms": [room_json(request, room) for room in rooms]})


async def open_room(request: web.Request) -> web.Response:
    only_params(request.query, set())
    body = await json_body(request, "{title}", _NEW_ROOM_KEYS)
    title = parse_title(body.get("title"))
    registry = _require_registry(request.app)
    limit = registry.settings.max_rooms
    if len(registry.rooms()) >= limit:
        raise ApiError(
            503, f"Expected fewer than {limit} rooms open at once. Received: one more ({title!r})"
        )
    storage = request.app[STORAGE]
    for _ in range(5):  # a random tail that is taken already: try another
        name = room_name(title)
        if registry.get(name) is not None:
            continue
        room = registry.create(name)
        stored = StoredRoom(name, title, room.teacher_token, time.time())
        try:
            await asyncio.to_thread(storage.add_room, stored)
        except ValueError:  # stored before (a closed room): the name stays used
            await registry.close_room(name)
            continue
        except BaseException:
            await registry.close_room(name)
            raise
        request.app[OPEN_ROOMS][name] = stored
        logger.info("room %s opened", name)
        return web.json_response(
            room_json(request, stored), status=201, headers={"Location": f"/api/rooms/{name}"}
        )
    raise ApiError(503, "Expected a free room name. Received: five taken in a row")


async def get_room(request: web.Request) -> web.Response:
    only_params(request.query, set())
    return web.json_response(room_json(request, _open_room(request)))


async def close_room(request: web.Request) -> web.Response:
    """Closes the room: every browser is disconnected and a bot in it leaves."""
    only_params(request.query, set())
    stored = _open_room(request)
    registry = _require_registry(request.app)
    request.app[OPEN_ROOMS].pop(stored.name, None)
    await registry.close_room(stored.name, "the teacher closed the class")
    await asyncio.to_thread(request.app[STORAGE].close_room, stored.name, time.time())
    logger.info("room %s closed", stored.name)
    return web.Response(status=204)


def _open_room(request: web.Request) -> StoredRoom:
    name = request.match_info["room"]
    stored = request.app[OPEN_ROOMS].get(name)
    if stored is None:
        raise not_found(
            f"Expected the name of an open room (see GET /api/rooms). Received: {name[:80]!r}"
        )
    return stored


def parse_title(value: object) -> str:
    """A room title: a string of 1 to ``MAX_TITLE_LENGTH`` printable characters (NFC, trimmed)."""
    if not isinstance(value, str):
        shown = "nothing" if value is None else type(value).__name__
        raise bad_request(f"Expected title to be a string. Received: {shown}", field="title")
    title = unicodedata.normalize("NFC", value).strip()
    if not 1 <= len(title) <= MAX_TITLE_LENGTH or not title.isprintable():
        raise bad_request(
            f"Expected title to be 1 to {MAX_TITLE_LENGTH} printable characters. "
            f"Received: {title[:80]!r} ({len(title)} characters)",
            field="title",
        )
    return title


def room_name(title: str) -> str:
    """``Math 7b`` → ``math-7b-3f9a0c``: readable in a link, unguessable enough to not collide."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:MAX_SLUG_LENGTH]
    return f"{slug.rstrip('-') or 'class'}-{secrets.token_hex(3)}"
