"""JSON schemas for the OpenAPI document: derived from the result dataclasses the handlers
serialise (a field added to a storage result shows up in the document), plus the API's own
objects (errors, bots) and the parameters several operations share."""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from enum import Enum
from typing import Any

from bot.outcomes import BotCode
from bot.web.bots import BotState
from storage import (
    AlertInfo,
    MeetingInfo,
    MeetingSummary,
    StudentLane,
    StudentMeeting,
    TimelineBucket,
)

#: Bounds of the ``bucket`` parameter (seconds).
MIN_BUCKET_S = 0.5
MAX_BUCKET_S = 86400.0
#: Longest teacher name, room, display name (the storage column).
MAX_NAME_LENGTH = 255


def dataclass_schemas(*classes: type) -> dict[str, dict[str, Any]]:
    """JSON schemas of result dataclasses (and the ones they nest), by class name."""
    schemas: dict[str, dict[str, Any]] = {}
    for cls in classes:
        _add_dataclass(cls, schemas)
    return schemas


def _add_dataclass(cls: type, schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if cls.__name__ not in schemas:
        schemas[cls.__name__] = {}  # placeholder: stops recursion
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)
        schemas[cls.__name__] = {
            "type": "object",
            "properties": {f.name: _schema(hints[f.name], schemas) for f in fields},
            "required": [f.name for f in fields],
            "additionalProperties": False,
        }
        doc = (cls.__doc__ or "").strip()
        if doc and not doc.startswith(f"{cls.__name__}("):
            schemas[cls.__name__]["description"] = " ".join(doc.split())
    return {"$ref": f"#/components/schemas/{cls.__name__}"}


def _schema(hint: Any, schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        inner = (
            _schema(options[0], schemas)
            if len(options) == 1
            else {"anyOf": [_schema(a, schemas) for a in options]}
        )
        if set(inner) == {"type"} and isinstance(inner["type"], str):
            return {"type": [inner["type"], "null"]}
        if set(inner) == {"type", "format"}:
            return {"type": [inner["type"], "null"], "format": inner["format"]}
        return {"anyOf": [inner, {"type": "null"}]}
    if origin in (tuple, list):
        return {"type": "array", "items": _schema(typing.get_args(hint)[0], schemas)}
    if dataclasses.is_dataclass(hint):
        return _add_dataclass(hint, schemas)  # type: ignore[arg-type]
    if isinstance(hint, type) and issubclass(hint, Enum):
        return {"type": "string", "enum": [member.value for member in hint]}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if hint in simple:
        return {"type": simple[hint]}
    if hint is datetime:
        return {"type": "string", "format": "date-time"}
    raise TypeError(f"Expected a type the API serialises. Received: {hint!r}")


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_object(properties: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def json_answer(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def json_or_csv(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": schema},
            "text/csv": {"schema": {"type": "string"}},
        },
    }


def error_answer(description: str) -> dict[str, Any]:
    return json_answer(ref("Error"), description)


UNAUTHORIZED = {"401": error_answer("No or wrong bearer token.")}

FORMAT = {
    "name": "format",
    "in": "query",
    "required": False,
    "description": "json (default) or csv: the same rows flattened, for spreadsheets.",
    "schema": {"type": "string", "enum": ["json", "csv"]},
}

BUCKET = {
    "name": "bucket",
    "in": "query",
    "required": False,
    "description": "Bucket length: a number with an optional unit (ms, s, m, h), "
    f"{MIN_BUCKET_S:g} s "
    f"to {MAX_BUCKET_S / 3600:g} h; default 10s.",
    "schema": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)?$"},
}


def time_param(name: str, meaning: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": f"{meaning}: ISO 8601 date or time (no offset means UTC) or Unix seconds.",
        "schema": {"type": "string"},
    }


def text_param(name: str, where: str, description: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH}
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
    }


MEETING_ID = {
    "name": "meeting_id",
    "in": "path",
    "required": True,
    "description": "A meeting id as listed by GET /api/meetings.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
}
BOT_ID = {
    "name": "bot_id",
    "in": "path",
    "required": True,
    "description": "A bot id as returned by POST /api/bots.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
}

ROOM = {
    "name": "room",
    "in": "path",
    "required": True,
    "description": "A room name as returned by POST /api/rooms.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
}


def component_schemas() -> dict[str, dict[str, Any]]:
    """Every schema of ``components/schemas`` (a fresh dict each call)."""
    schemas = dataclass_schemas(
        MeetingInfo, MeetingSummary, TimelineBucket, AlertInfo, StudentMeeting, StudentLane
    )
    summary = dict(schemas["MeetingSummary"])
    schemas["MeetingPage"] = json_object(
        {
            **summary["properties"],
            "live": {"type": "boolean", "description": "A bot is in this meeting now."},
        },
        "A meeting's summary: the meeting, one row per student, alert counts, whether it is live.",
    )
    schemas["Error"] = json_object(
        {
            "error": {"type": "string", "description": "Short code: bad_request, not_found, ..."},
            "message": {
                "type": "string",
                "description": "What was expected and what was received.",
            },
            "status": {"type": "integer"},
        }
    )
    schemas["Error"]["required"] = ["error", "message", "status"]
    schemas["Error"]["additionalProperties"] = True  # e.g. "field" naming the faulty input
    schemas["Bot"] = json_object(
        {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": [state.value for state in BotState]},
            "meeting_url": {
                "type": "string",
                "description": "The meeting URL without its secrets.",
            },
            "teacher": {"type": "string"},
            "teacher_code": {
                "type": "string",
                "description": "The secret the teacher whispers to the bot in the meeting chat "
                "(!claim CODE) to receive the alerts; replaced when typed in public.",
            },
            "started_at": {"type": "string", "format": "date-time"},
            "meeting_id": {
                "type": ["string", "null"],
                "description": "Set once the bot opened the meeting.",
            },
            "error": {"type": ["string", "null"], "description": "Why the bot failed."},
            "stop_reason": {"type": ["string", "null"], "description": "Why the bot left."},
            "num_alerts": {"type": "integer"},
            "paused": {"type": "boolean", "description": "The teacher paused the analysis."},
            "code": {
                "type": ["string", "null"],
                "enum": [*(code.value for code in BotCode), None],
                "description": "Once the bot failed or left: a stable code (meeting_unreachable, "
                "room_not_found, auth_failed, join_refused, internal_error; stopped, "
                "everyone_left, meeting_ended, kicked), as in its webhook events.",
            },
            "message": {
                "type": ["string", "null"],
                "description": "One sentence for people about the code.",
            },
            "webhook_url": {
                "type": ["string", "null"],
                "description": "Where its lifecycle events are POSTed.",
            },
            "webhook": {
                "oneOf": [
                    json_object(
                        {
                            "delivered": {
                                "type": "integer",
                                "minimum": 0,
                                "description": "Events the receiver accepted (2xx).",
                            },
                            "failed": {
                                "type": "integer",
                                "minimum": 0,
                                "description": "Events given up on: refused by the receiver, "
                                "or every attempt (network error, 408, 425, 429, 5xx) failed.",
                            },
                            "dropped": {
                                "type": "integer",
                                "minimum": 0,
                                "description": "Events never sent: pushed out of the bot's full "
                                "queue (the final event is kept), or still queued when its "
                                "drain time after the end ran out.",
                            },
                        },
                        "How the bot's webhook deliveries went so far (events still waiting "
                        "count in none); /metrics has the totals over bots.",
                    ),
                    {"type": "null"},
                ],
                "description": "null without a webhook_url.",
            },
            "webhook_secret": {
                "type": "string",
                "description": "Only in the answer to POST /api/bots with a webhook_url, never "
                "again: the HMAC-SHA256 key of the X-Classpulse-Signature header.",
            },
        }
    )
    schemas["Bot"]["required"].remove("webhook_secret")
    schemas["NewBot"] = {
        "type": "object",
        "properties": {
            "meeting_url": {
                "type": "string",
                "description": "janus+ws://HOST[:PORT][/PATH]?room=ID[&textroom=ID][&pin=PIN]...",
            },
            "teacher": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_NAME_LENGTH,
                "description": "The teacher's display name in the meeting: a label; it grants "
                "nothing (the teacher claims with teacher_code).",
            },
            "teacher_code": {
                "type": "string",
                "minLength": 8,
                "maxLength": 64,
                "description": "The secret the teacher whispers to the bot (!claim CODE); "
                "default: a new one, returned in the answer.",
            },
            "options": {
                "type": "object",
                "description": "Options for the bot session (default none); an unknown or bad "
                "one is a 400 naming it (options.NAME).",
                "properties": {
                    "mode": {
                        "type": "string",
                        "enum": ["engagement", "attention"],
                        "description": "engagement: the emotion model plus attention signals; "
                        "attention: head direction and eye closure only, no emotion model "
                        "(recommended for EU institutions). Default: the server's "
                        "CLASSPULSE_MODE, else engagement.",
                    }
                },
            },
            "webhook_url": {
                "type": "string",
                "format": "uri",
                "pattern": "^[hH][tT][tT][pP][sS]?://",
                "maxLength": 2000,
                "description": "An http(s) URL that receives the bot's signed lifecycle events "
                "(bot.joining, bot.in_meeting, bot.alert, bot.ended, bot.failed), with "
                "either launcher. bot.in_meeting has the code in_meeting, or restarted when the "
                "bot's Ray actor died, was restarted and rejoined (data.gap_s: seconds not "
                "analysed). Never a link-local (cloud metadata), unspecified, multicast or "
                "reserved address: such a URL is a 400, a host name resolving only there is "
                "never connected.",
            },
        },
        "required": ["meeting_url", "teacher"],
        "additionalProperties": False,
    }
    schemas["Room"] = json_object(
        {
            "room": {"type": "string", "description": "Its name: invite the bot as builtin:NAME."},
            "title": {"type": "string"},
            "teacher_url": {
                "type": "string",
                "description": "The teacher's link (keep it secret: it makes its holder teacher).",
            },
            "student_url": {"type": "string", "description": "The link to share with students."},
        }
    )
    schemas["Room"]["required"] = ["room", "title", "teacher_url", "student_url"]
    schemas["NewRoom"] = {
        "type": "object",
        "properties": {
            "title": {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "description": "The class's title, shown in the room list and the history.",
            }
        },
        "required": ["title"],
        "additionalProperties": False,
    }
    schemas["ModelReport"] = json_object(
        {
            "report_dir": {"type": ["string", "null"]},
            "report": {
                "type": ["string", "null"],
                "description": "The evaluation report (Markdown).",
            },
            "files": {
                "type": "array",
                "items": json_object(
                    {
                        "name": {"type": "string"},
                        "media_type": {"type": "string"},
                        "size": {"type": "integer"},
                    }
                ),
            },
        }
    )
    return schemas
