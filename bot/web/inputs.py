"""What every API route reads from a request: query parameters checked, JSON bodies, storage
reads off the event loop, the built-in room registry when this server has one.

Apart from the route modules (``api``, ``api_bots``, ``api_rooms``, ``api_report``) so they all
import it and none imports another.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from bot.web import schemas
from bot.web.errors import bad_request, not_found
from bot.web.keys import STORAGE
from storage import UnknownMeetingError, UnknownStudentError

T = TypeVar("T")

#: Deepest JSON nesting a request body may have (the API's bodies are two levels deep).
MAX_JSON_DEPTH = 8


async def in_thread(request: web.Request, read: Callable[[Any], T]) -> T:
    """Runs a storage read off the event loop; unknown ids become 404, bad values 400."""
    storage = request.app[STORAGE]
    meeting_id = request.match_info.get("meeting_id", "")
    if "\x00" in meeting_id or len(meeting_id) > 64:  # no stored meeting has such an id
        raise not_found(f"Expected the id of a stored meeting. Received: {meeting_id[:80]!r}")
    try:
        return await asyncio.to_thread(read, storage)
    except (UnknownMeetingError, UnknownStudentError) as error:
        raise not_found(str(error)) from None
    except ValueError as error:
        raise bad_request(str(error)) from None


def only_params(query: Any, allowed: set[str]) -> None:
    """400 for a query parameter outside ``allowed`` or one given twice."""
    unknown = sorted(set(query) - allowed)
    if unknown:
        expected = f"only the parameters {sorted(allowed)}" if allowed else "no query parameters"
        raise bad_request(f"Expected {expected}. Received unknown: {unknown}")
    repeated = sorted(key for key in set(query) if len(query.getall(key)) > 1)
    if repeated:
        raise bad_request(f"Expected each parameter once. Received repeated: {repeated}")


def parse_field(parse: Callable[[], T], field: str) -> T:
    """``parse()``; its ``ValueError`` becomes a 400 naming ``field``."""
    try:
        return parse()
    except ValueError as error:
        raise bad_request(str(error), field=field) from None


def check_text(value: str, field: str) -> str:
    """``value`` when it is a usable name (1 to ``MAX_NAME_LENGTH`` characters); else 400."""
    # NUL is refused here: PostgreSQL cannot compare text with it and no stored name holds one.
    if not value.strip() or len(value) > schemas.MAX_NAME_LENGTH or "\x00" in value:
        raise bad_request(
            f"Expected {field} as 1 to {schemas.MAX_NAME_LENGTH} characters, not only spaces. "
            f"Received: {value[:40]!r}",
            field=field,
        )
    return value


async def json_body(request: web.Request, shape: str, keys: set[str]) -> dict[str, Any]:
    """The request's JSON object; 400 for invalid JSON, another type, deep nesting or a key
    outside ``keys`` (the 400 names the first unknown key as its field)."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request(f"Expected a JSON object body {shape}. Received: invalid JSON") from None
    except RecursionError:
        body = None
        depth = MAX_JSON_DEPTH + 1
    else:
        depth = _depth(body)
    if depth > MAX_JSON_DEPTH:
        raise bad_request(
            f"Expected JSON nested at most {MAX_JSON_DEPTH} levels deep. Received: deeper"
        )
    if not isinstance(body, dict):
        raise bad_request(f"Expected a JSON object body {shape}. Received: {type(body).__name__}")
    unknown = sorted(set(body) - keys)
    if unknown:
        raise bad_request(
            f"Expected only the keys {sorted(keys)}. Received unknown: {unknown}",
            field=unknown[0],
        )
    return body


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def room_registry(app: web.Application) -> Any:
    """The built-in room registry, or ``None`` when this server has no built-in room."""
    try:
        from bot.room import ROOM_REGISTRY
    except ImportError:
        return None
    return app.get(ROOM_REGISTRY)
