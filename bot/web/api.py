"""The REST API: history queries, CSV/JSON export, bot management and the live feed.

Handlers read storage in a thread (the queries are synchronous SQLAlchemy) and answer JSON, or
CSV with ``?format=csv``. Bad input raises ``ApiError`` (400 / 404 / 409 / 503, JSON body).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from bot.bot_options import DuplicateBotError, TooManyBotsError
from bot.meetings.url import parse_any_meeting_url
from bot.web import openapi, schemas
from bot.web.bots import BotsUnavailableError, bot_json, live_meeting_ids
from bot.web.errors import ApiError, bad_request, not_found
from bot.web.keys import BOTS, CLOSING, SETTINGS, START_LOCK, STORAGE
from bot.web.params import parse_duration, parse_time
from storage import StudentLane, UnknownMeetingError, UnknownStudentError, write_csv
from storage.export import to_jsonable

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds between keep-alive comments on an idle event stream (also how soon a closed
#: connection is noticed).
KEEPALIVE_S = 15.0
#: Media types the model report folder may serve, by suffix.
REPORT_SUFFIXES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".md": "text/markdown",
    ".csv": "text/csv",
    ".json": "application/json",
}
_NEW_BOT_KEYS = {"meeting_url", "teacher", "teacher_code", "options"}
#: Deepest JSON nesting a request body may have (the API's bodies are two levels deep).
MAX_JSON_DEPTH = 8


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/openapi.json", get_openapi)
    app.router.add_get("/api/meetings", list_meetings)
    app.router.add_get("/api/meetings/{meeting_id}", get_meeting)
    app.router.add_get("/api/meetings/{meeting_id}/timeline", get_timeline)
    app.router.add_get("/api/meetings/{meeting_id}/students", get_student_lanes)
    app.router.add_get("/api/meetings/{meeting_id}/alerts", get_alerts)
    app.router.add_get("/api/meetings/{meeting_id}/live", follow_meeting)
    app.router.add_get("/api/students/{name}/history", get_student_history)
    app.router.add_get("/api/bots", list_bots)
    app.router.add_post("/api/bots", start_bot)
    app.router.add_get("/api/bots/{bot_id}", get_bot)
    app.router.add_delete("/api/bots/{bot_id}", stop_bot)
    app.router.add_get("/api/model", get_model_report)
    app.router.add_get("/api/model/files/{name}", get_model_file)


# -- history ------------------------------------------------------------------------------


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi.build_document())


async def list_meetings(request: web.Request) -> web.Response:
    query = request.query
    _only(query, {"since", "until", "teacher", "room", "platform", "format"})
    filters: dict[str, Any] = _time_window(query)
    for name in ("teacher", "room", "platform"):
        if name in query:
            filters[name] = unicodedata.normalize("NFC", _text(query[name], name))
    meetings = await _in_thread(request, lambda storage: storage.meetings(**filters))
    return _answer(request, {"meetings": meetings}, meetings)


async def get_meeting(request: web.Request) -> web.Response:
    _only(request.query, {"format"})
    meeting_id = request.match_info["meeting_id"]
    summary = await _in_thread(request, lambda storage: storage.meeting_summary(meeting_id))
    page = to_jsonable(summary)
    page["live"] = meeting_id in live_meeting_ids(request.app[BOTS])
    return _answer(request, page, summary)


async def get_timeline(request: web.Request) -> web.Response:
    _only(request.query, {"bucket", "format"})
    meeting_id = request.match_info["meeting_id"]
    bucket_s = _bucket(request)
    buckets = await _in_thread(
        request, lambda storage: storage.class_timeline(meeting_id, bucket_s)
    )
    return _answer(
        request, {"meeting_id": meeting_id, "bucket_s": bucket_s, "buckets": buckets}, buckets
    )


async def get_student_lanes(request: web.Request) -> web.Response:
    _only(request.query, {"bucket", "format"})
    meeting_id = request.match_info["meeting_id"]
    bucket_s = _bucket(request)

    def lanes(storage: Any) -> list[StudentLane]:
        return storage.student_lanes(meeting_id, bucket_s)

    students = await _in_thread(request, lanes)
    return _answer(
        request, {"meeting_id": meeting_id, "bucket_s": bucket_s, "students": students}, students
    )


async def get_alerts(request: web.Request) -> web.Response:
    _only(request.query, {"format"})
    meeting_id = request.match_info["meeting_id"]
    alerts = await _in_thread(request, lambda storage: storage.alerts(meeting_id))
    return _answer(request, {"meeting_id": meeting_id, "alerts": alerts}, alerts)


async def get_student_history(request: web.Request) -> web.Response:
    query = request.query
    _only(query, {"since", "until", "format"})
    name = unicodedata.normalize("NFC", _text(request.match_info["name"], "name"))
    window = _time_window(query)
    meetings = await _in_thread(request, lambda storage: storage.student_history(name, **window))
    return _answer(request, {"display_name": name, "meetings": meetings}, meetings)


# -- bots ---------------------------------------------------------------------------------


async def list_bots(request: web.Request) -> web.Response:
    _only(request.query, set())
    return web.json_response({"bots": [bot_json(info) for info in request.app[BOTS].list()]})


async def start_bot(request: web.Request) -> web.Response:
    _only(request.query, set())
    body = await _json_body(request, "{meeting_url, teacher, teacher_code?, options?}")
    unknown = sorted(set(body) - _NEW_BOT_KEYS)
    if unknown:
        raise bad_request(
            f"Expected only the keys {sorted(_NEW_BOT_KEYS)}. Received unknown: {unknown}",
            field=unknown[0],
        )
    for key in ("meeting_url", "teacher"):
        if not isinstance(body.get(key), str):
            raise bad_request(
                f"Expected {key} to be a string. Received: {body.get(key)!r:.80}", field=key
            )
    url = body["meeting_url"]
    meeting = _read(lambda: parse_any_meeting_url(url), "meeting_url")
    allowed = request.app[SETTINGS].allowed_meeting_hosts
    host = getattr(meeting, "host", None)
    if allowed and host is not None and host.lower() not in allowed:
        raise bad_request(
            f"Expected a meeting on one of the hosts {list(allowed)}. Received: {host!r:.80}",
            field="meeting_url",
        )
    teacher = _text(body["teacher"], "teacher")
    code = body.get("teacher_code")
    if code is not None and not isinstance(code, str):
        raise bad_request(
            f"Expected teacher_code to be a string. Received: {type(code).__name__}",
            field="teacher_code",
        )
    options = body.get("options", {})
    if not isinstance(options, dict):
        raise bad_request(
            f"Expected options to be a JSON object. Received: {options!r:.80}", field="options"
        )
    bots = request.app[BOTS]
    async with request.app[START_LOCK]:
        key = meeting.redacted()
        for info in bots.list():
            if info.state.active and info.meeting_url == key:
                raise _duplicate(info.bot_id, key)
        running = sum(1 for info in bots.list() if info.state.active)
        max_bots = request.app[SETTINGS].max_bots
        if running >= max_bots:
            raise ApiError(
                503,
                f"Expected fewer than {max_bots} bots running on this server. "
                f"Received: a request for one more ({running} running)",
            )
        try:
            info = await bots.start(url, teacher, options, teacher_code=code)
        except DuplicateBotError as error:
            raise _duplicate(error.bot_id, key) from None
        except (BotsUnavailableError, TooManyBotsError) as error:
            raise ApiError(503, str(error)) from None
        except ValueError as error:
            raise bad_request(str(error), field=getattr(error, "field", None)) from None
    logger.info(
        "bot %s started for %s", info.bot_id, info.meeting_url, extra={"bot_id": info.bot_id}
    )
    return web.json_response(
        bot_json(info), status=201, headers={"Location": f"/api/bots/{info.bot_id}"}
    )


def _duplicate(bot_id: str, meeting_url: str) -> ApiError:
    return ApiError(
        409,
        f"Expected one bot per meeting. Received: {meeting_url}, which bot {bot_id} is in",
        bot_id=bot_id,
    )


async def _json_body(request: web.Request, shape: str) -> dict[str, Any]:
    """The request's JSON object; 400 for invalid JSON, another type or deep nesting."""
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


async def get_bot(request: web.Request) -> web.Response:
    _only(request.query, set())
    bot_id = request.match_info["bot_id"]
    info = request.app[BOTS].get(bot_id)
    if info is None:
        raise not_found(f"Expected the id of a bot of this server. Received: {bot_id!r}")
    return web.json_response(bot_json(info))


async def stop_bot(request: web.Request) -> web.Response:
    _only(request.query, set())
    bot_id = request.match_info["bot_id"]
    bots = request.app[BOTS]
    if not await bots.stop(bot_id):
        raise not_found(f"Expected the id of a bot of this server. Received: {bot_id!r}")
    info = bots.get(bot_id)
    if info is None:
        raise not_found(
            f"Expected the id of a bot of this server. Received: {bot_id!r} (gone while stopping)"
        )
    return web.json_response(bot_json(info))


async def follow_meeting(request: web.Request) -> web.StreamResponse:
    """Server-sent events from the meeting's live feed until the bot leaves, the client goes or
    the server shuts down. Each event is ``event: <type>`` and ``data: <the session's dict>``."""
    _only(request.query, set())
    meeting_id = request.match_info["meeting_id"]
    bots = request.app[BOTS]
    if meeting_id not in live_meeting_ids(bots):
        await _in_thread(request, lambda storage: storage.meeting(meeting_id))  # 404 when unknown
        raise ApiError(
            409,
            f"Expected a meeting with a bot in it now. Received: {meeting_id!r}, which has none",
        )
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    events = bots.subscribe(meeting_id)
    closing = asyncio.ensure_future(request.app[CLOSING].wait())
    # One pending read survives keep-alive timeouts: cancelling a read would close the feed's
    # generator and lose the subscription.
    pending: asyncio.Future[dict[str, Any]] | None = None
    try:
        for info in bots.list():
            if info.meeting_id == meeting_id:
                await _send(response, "bot", bot_json(info))
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            waiting: set[asyncio.Future[Any]] = {pending, closing}
            done, _ = await asyncio.wait(
                waiting, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
            )
            if closing in done:
                break
            if pending not in done:
                if meeting_id not in live_meeting_ids(bots):
                    break  # the bot is gone without saying so (it crashed)
                await response.write(b": keepalive\n\n")
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                break
            pending = None
            name = str(event.get("type", "message"))
            await _send(response, name, event)
            if name == "ended":
                break
        await _send(response, "end", {})
    except ConnectionError:
        pass  # the browser went away
    finally:
        closing.cancel()
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        await events.aclose()  # type: ignore[attr-defined]
    return response


async def _send(response: web.StreamResponse, name: str, payload: dict[str, Any]) -> None:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    await response.write(f"event: {name}\ndata: {data}\n\n".encode())


# -- the model report ---------------------------------------------------------------------


async def get_model_report(request: web.Request) -> web.Response:
    _only(request.query, set())
    folder = request.app[SETTINGS].model_report_dir
    files = await asyncio.to_thread(_report_files, folder)
    report_path = next((path for path in files if path.name == "report.md"), None)
    report = (
        await asyncio.to_thread(report_path.read_text, encoding="utf-8") if report_path else None
    )
    listed = [
        {"name": p.name, "media_type": REPORT_SUFFIXES[p.suffix], "size": p.stat().st_size}
        for p in files
    ]
    return web.json_response(
        {"report_dir": str(folder) if folder else None, "report": report, "files": listed}
    )


async def get_model_file(request: web.Request) -> web.StreamResponse:
    _only(request.query, set())
    name = request.match_info["name"]
    files = await asyncio.to_thread(_report_files, request.app[SETTINGS].model_report_dir)
    found = next((path for path in files if path.name == name), None)
    if found is None:
        raise not_found(f"Expected a file listed by GET /api/model. Received: {name!r}")
    return web.FileResponse(found, headers={"Content-Type": REPORT_SUFFIXES[found.suffix]})


def _report_files(folder: Path | None) -> list[Path]:
    """The servable files directly in ``folder`` (never below: no request path is used)."""
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in REPORT_SUFFIXES)


# -- pieces -------------------------------------------------------------------------------


async def _in_thread(request: web.Request, read: Callable[[Any], T]) -> T:
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


def _answer(request: web.Request, body: Any, rows: Any) -> web.Response:
    """``body`` as JSON, or ``rows`` as CSV with ``?format=csv``."""
    chosen = request.query.get("format", "json")
    if chosen == "json":
        return web.json_response(_jsonable(body))
    if chosen != "csv":
        raise bad_request(
            f"Expected format=json or format=csv. Received: {chosen!r}", field="format"
        )
    out = io.StringIO()
    if not isinstance(rows, list) or rows:
        write_csv(rows, out)
    name = request.path.removeprefix("/api/").replace("/", "-") or "export"
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{_safe_filename(name)}.csv"'},
    )


def _jsonable(value: Any) -> Any:
    """Result dataclasses (also inside the dicts that wrap them) as JSON values."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return to_jsonable(value)


def _safe_filename(name: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)[:120]


def _only(query: Any, allowed: set[str]) -> None:
    unknown = sorted(set(query) - allowed)
    if unknown:
        expected = f"only the parameters {sorted(allowed)}" if allowed else "no query parameters"
        raise bad_request(f"Expected {expected}. Received unknown: {unknown}")
    repeated = sorted(key for key in set(query) if len(query.getall(key)) > 1)
    if repeated:
        raise bad_request(f"Expected each parameter once. Received repeated: {repeated}")


def _read(parse: Callable[[], T], field: str) -> T:
    try:
        return parse()
    except ValueError as error:
        raise bad_request(str(error), field=field) from None


def _time_window(query: Any) -> dict[str, Any]:
    """``since`` / ``until`` query parameters as datetimes (400 naming the bad one)."""
    window: dict[str, Any] = {}
    for name in ("since", "until"):
        if name in query:
            text = query[name]
            window[name] = _read(lambda: parse_time(text, name=name), name)  # noqa: B023 - called at once
    return window


def _text(value: str, field: str) -> str:
    # NUL is refused here: PostgreSQL cannot compare text with it and no stored name holds one.
    if not value.strip() or len(value) > schemas.MAX_NAME_LENGTH or "\x00" in value:
        raise bad_request(
            f"Expected {field} as 1 to {schemas.MAX_NAME_LENGTH} characters, not only spaces. "
            f"Received: {value[:40]!r}",
            field=field,
        )
    return value


def _bucket(request: web.Request) -> float:
    text = request.query.get("bucket", "10s")
    return _read(
        lambda: parse_duration(
            text, min_s=schemas.MIN_BUCKET_S, max_s=schemas.MAX_BUCKET_S, name="bucket"
        ),
        "bucket",
    )
