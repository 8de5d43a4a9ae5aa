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
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from bot.web import api_bots, api_report, api_rooms, openapi, schemas
from bot.web.bots import bot_json, live_meeting_ids
from bot.web.errors import ApiError, bad_request, not_found
from bot.web.inputs import check_text, in_thread, only_params, parse_field
from bot.web.keys import BOTS, CLOSING, SETTINGS
from bot.web.params import parse_duration, parse_time
from storage import StudentLane, write_csv
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


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/openapi.json", get_openapi)
    app.router.add_get("/api/meetings", list_meetings)
    app.router.add_get("/api/meetings/{meeting_id}", get_meeting)
    app.router.add_get("/api/meetings/{meeting_id}/timeline", get_timeline)
    app.router.add_get("/api/meetings/{meeting_id}/students", get_student_lanes)
    app.router.add_get("/api/meetings/{meeting_id}/alerts", get_alerts)
    app.router.add_get("/api/meetings/{meeting_id}/report", api_report.get_report)
    app.router.add_get("/api/meetings/{meeting_id}/live", follow_meeting)
    app.router.add_get("/api/students/{name}/history", get_student_history)
    app.router.add_get("/api/bots", api_bots.list_bots)
    app.router.add_post("/api/bots", api_bots.start_bot)
    app.router.add_get("/api/bots/{bot_id}", api_bots.get_bot)
    app.router.add_delete("/api/bots/{bot_id}", api_bots.stop_bot)
    api_rooms.setup_room_routes(app)
    app.router.add_get("/api/model", get_model_report)
    app.router.add_get("/api/model/files/{name}", get_model_file)


# -- history ------------------------------------------------------------------------------


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi.build_document())


async def list_meetings(request: web.Request) -> web.Response:
    query = request.query
    only_params(query, {"since", "until", "teacher", "room", "platform", "format"})
    filters: dict[str, Any] = _time_window(query)
    for name in ("teacher", "room", "platform"):
        if name in query:
            filters[name] = unicodedata.normalize("NFC", check_text(query[name], name))
    meetings = await in_thread(request, lambda storage: storage.meetings(**filters))
    return _answer(request, {"meetings": meetings}, meetings)


async def get_meeting(request: web.Request) -> web.Response:
    only_params(request.query, {"format"})
    meeting_id = request.match_info["meeting_id"]
    summary = await in_thread(request, lambda storage: storage.meeting_summary(meeting_id))
    page = to_jsonable(summary)
    page["live"] = meeting_id in live_meeting_ids(request.app[BOTS])
    return _answer(request, page, summary)


async def get_timeline(request: web.Request) -> web.Response:
    only_params(request.query, {"bucket", "format"})
    meeting_id = request.match_info["meeting_id"]
    bucket_s = _bucket(request)
    buckets = await in_thread(request, lambda storage: storage.class_timeline(meeting_id, bucket_s))
    return _answer(
        request, {"meeting_id": meeting_id, "bucket_s": bucket_s, "buckets": buckets}, buckets
    )


async def get_student_lanes(request: web.Request) -> web.Response:
    only_params(request.query, {"bucket", "format"})
    meeting_id = request.match_info["meeting_id"]
    bucket_s = _bucket(request)

    def lanes(storage: Any) -> list[StudentLane]:
        return storage.student_lanes(meeting_id, bucket_s)

    students = await in_thread(request, lanes)
    return _answer(
        request, {"meeting_id": meeting_id, "bucket_s": bucket_s, "students": students}, students
    )


async def get_alerts(request: web.Request) -> web.Response:
    only_params(request.query, {"format"})
    meeting_id = request.match_info["meeting_id"]
    alerts = await in_thread(request, lambda storage: storage.alerts(meeting_id))
    return _answer(request, {"meeting_id": meeting_id, "alerts": alerts}, alerts)


async def get_student_history(request: web.Request) -> web.Response:
    query = request.query
    only_params(query, {"since", "until", "format"})
    name = unicodedata.normalize("NFC", check_text(request.match_info["name"], "name"))
    window = _time_window(query)
    meetings = await in_thread(request, lambda storage: storage.student_history(name, **window))
    return _answer(request, {"display_name": name, "meetings": meetings}, meetings)


async def follow_meeting(request: web.Request) -> web.StreamResponse:
    """Server-sent events from the meeting's live feed until the bot leaves, the client goes or
    the server shuts down. Each event is ``event: <type>`` and ``data: <the session's dict>``."""
    only_params(request.query, set())
    meeting_id = request.match_info["meeting_id"]
    bots = request.app[BOTS]
    if meeting_id not in live_meeting_ids(bots):
        await in_thread(request, lambda storage: storage.meeting(meeting_id))  # 404 when unknown
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
    only_params(request.query, set())
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
    only_params(request.query, set())
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


def _time_window(query: Any) -> dict[str, Any]:
    """``since`` / ``until`` query parameters as datetimes (400 naming the bad one)."""
    window: dict[str, Any] = {}
    for name in ("since", "until"):
        if name in query:
            text = query[name]
            window[name] = parse_field(lambda: parse_time(text, name=name), name)  # noqa: B023 - called at once
    return window


def _bucket(request: web.Request) -> float:
    text = request.query.get("bucket", "10s")
    return parse_field(
        lambda: parse_duration(
            text, min_s=schemas.MIN_BUCKET_S, max_s=schemas.MAX_BUCKET_S, name="bucket"
        ),
        "bucket",
    )
