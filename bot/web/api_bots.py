"""The bot routes of the REST API: invite (checked field by field, one bot per meeting, a cap),
list, show (with the teacher code), stop."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from bot.bot_options import DuplicateBotError, OptionError, TooManyBotsError, session_settings
from bot.meetings.url import BuiltinMeetingUrl, parse_any_meeting_url
from bot.web.bots import BotsUnavailableError, Webhook, bot_json
from bot.web.errors import ApiError, bad_request, not_found
from bot.web.inputs import check_text, json_body, only_params, parse_field, room_registry
from bot.web.keys import BOTS, OPEN_ROOMS, SETTINGS, START_LOCK
from bot.web.webhooks import check_webhook_url, new_secret

logger = logging.getLogger(__name__)

_NEW_BOT_KEYS = {"meeting_url", "teacher", "teacher_code", "options", "webhook_url"}


async def list_bots(request: web.Request) -> web.Response:
    only_params(request.query, set())
    return web.json_response({"bots": [bot_json(info) for info in request.app[BOTS].list()]})


async def start_bot(request: web.Request) -> web.Response:
    only_params(request.query, set())
    body = await json_body(
        request, "{meeting_url, teacher, teacher_code?, options?, webhook_url?}", _NEW_BOT_KEYS
    )
    for key in ("meeting_url", "teacher"):
        if not isinstance(body.get(key), str):
            raise bad_request(
                f"Expected {key} to be a string. Received: {body.get(key)!r:.80}", field=key
            )
    url = body["meeting_url"]
    meeting = parse_field(lambda: parse_any_meeting_url(url), "meeting_url")
    allowed = request.app[SETTINGS].allowed_meeting_hosts
    host = getattr(meeting, "host", None)
    if allowed and host is not None and host.lower() not in allowed:
        raise bad_request(
            f"Expected a meeting on one of the hosts {list(allowed)}. Received: {host!r:.80}",
            field="meeting_url",
        )
    teacher = check_text(body["teacher"], "teacher")
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
    webhook = None
    if body.get("webhook_url") is not None:  # checked here: a bad one is refused before any start
        url_text = parse_field(lambda: check_webhook_url(body["webhook_url"]), "webhook_url")
        webhook = Webhook(url_text, new_secret())
    if isinstance(meeting, BuiltinMeetingUrl):
        options = _builtin_room_options(request.app, meeting.room, options)
    try:  # every option by its own rule, whichever manager starts the bot
        session_settings(teacher, options, code)
    except OptionError as error:
        raise bad_request(str(error), field=error.field) from None
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
            info = await bots.start(url, teacher, options, teacher_code=code, webhook=webhook)
        except DuplicateBotError as error:
            raise _duplicate(error.bot_id, key) from None
        except (BotsUnavailableError, TooManyBotsError) as error:
            raise ApiError(503, str(error)) from None
        except ValueError as error:
            raise bad_request(str(error), field=getattr(error, "field", None)) from None
    logger.info(
        "bot %s started for %s", info.bot_id, info.meeting_url, extra={"bot_id": info.bot_id}
    )
    answer = bot_json(info)
    if webhook is not None:  # shown once, here: it signs this bot's webhook events
        answer["webhook_secret"] = webhook.secret
    return web.json_response(answer, status=201, headers={"Location": f"/api/bots/{info.bot_id}"})


def _builtin_room_options(
    app: web.Application, room: str, options: dict[str, Any]
) -> dict[str, Any]:
    """Refuses a built-in room that is not open (the bot would only fail after its 201); a
    room opened through the API lends its title to the meeting unless options name one."""
    registry = room_registry(app)
    if registry is None or registry.get(room) is None:
        raise bad_request(
            "Expected builtin:NAME of a room open on this server (see GET /api/rooms). "
            f"Received: builtin:{room}",
            field="meeting_url",
        )
    stored = app.get(OPEN_ROOMS, {}).get(room)
    return {"title": stored.title, **options} if stored is not None else options


def _duplicate(bot_id: str, meeting_url: str) -> ApiError:
    return ApiError(
        409,
        f"Expected one bot per meeting. Received: {meeting_url}, which bot {bot_id} is in",
        bot_id=bot_id,
    )


async def get_bot(request: web.Request) -> web.Response:
    only_params(request.query, set())
    bot_id = request.match_info["bot_id"]
    info = request.app[BOTS].get(bot_id)
    if info is None:
        raise not_found(f"Expected the id of a bot of this server. Received: {bot_id!r}")
    return web.json_response(bot_json(info))


async def stop_bot(request: web.Request) -> web.Response:
    only_params(request.query, set())
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
