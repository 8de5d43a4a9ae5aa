"""The OpenAPI 3.1 document served at ``/api/openapi.json``.

Response schemas are derived from the storage result dataclasses the handlers serialise, so a
field added there shows up here; a test compares the paths with the routes the app registers and
fuzzes every operation against these schemas.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from enum import Enum
from typing import Any

from bot.web.bots import BotState
from storage import AlertInfo, MeetingInfo, MeetingSummary, StudentMeeting, TimelineBucket
from storage.queries import StudentLane

OPENAPI_VERSION = "3.1.0"
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
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
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


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _json_or_csv(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": schema},
            "text/csv": {"schema": {"type": "string"}},
        },
    }


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_UNAUTHORIZED = {"401": _error("No or wrong bearer token.")}

_FORMAT = {
    "name": "format",
    "in": "query",
    "required": False,
    "description": "json (default) or csv: the same rows flattened, for spreadsheets.",
    "schema": {"type": "string", "enum": ["json", "csv"]},
}

_BUCKET = {
    "name": "bucket",
    "in": "query",
    "required": False,
    "description": f"Bucket length: a number with an optional unit (ms, s, m, h), {MIN_BUCKET_S:g} s "
    f"to {MAX_BUCKET_S / 3600:g} h; default 10s.",
    "schema": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)?$"},
}


def _time_param(name: str, meaning: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": f"{meaning}: ISO 8601 date or time (no offset means UTC) or Unix seconds.",
        "schema": {"type": "string"},
    }


def _text_param(name: str, where: str, description: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH}
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
    }


_MEETING_ID = {
    "name": "meeting_id",
    "in": "path",
    "required": True,
    "description": "A meeting id as listed by GET /api/meetings.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
}
_BOT_ID = {
    "name": "bot_id",
    "in": "path",
    "required": True,
    "description": "A bot id as returned by POST /api/bots.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
}


def build_document() -> dict[str, Any]:
    """The whole OpenAPI document (a fresh dict each call)."""
    schemas = dataclass_schemas(
        MeetingInfo, MeetingSummary, TimelineBucket, AlertInfo, StudentMeeting, StudentLane
    )
    summary = dict(schemas["MeetingSummary"])
    schemas["MeetingPage"] = _object(
        {
            **summary["properties"],
            "live": {"type": "boolean", "description": "A bot is in this meeting now."},
        },
        "A meeting's summary: the meeting, one row per student, alert counts, and whether it is live.",
    )
    schemas["Error"] = _object(
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
    schemas["Bot"] = _object(
        {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": [state.value for state in BotState]},
            "meeting_url": {
                "type": "string",
                "description": "The meeting URL without its secrets.",
            },
            "teacher": {"type": "string"},
            "started_at": {"type": "string", "format": "date-time"},
            "meeting_id": {
                "type": ["string", "null"],
                "description": "Set once the bot opened the meeting.",
            },
            "error": {"type": ["string", "null"]},
            "num_participants": {"type": "integer"},
            "options": {"type": "object"},
        }
    )
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
                "description": "The teacher's display name in the meeting: alerts are whispered to them.",
            },
            "options": {
                "type": "object",
                "description": "Options for the bot session (default none).",
            },
        },
        "required": ["meeting_url", "teacher"],
        "additionalProperties": False,
    }
    schemas["ModelReport"] = _object(
        {
            "report_dir": {"type": ["string", "null"]},
            "report": {
                "type": ["string", "null"],
                "description": "The evaluation report (Markdown).",
            },
            "files": {
                "type": "array",
                "items": _object(
                    {
                        "name": {"type": "string"},
                        "media_type": {"type": "string"},
                        "size": {"type": "integer"},
                    }
                ),
            },
        }
    )
    paths: dict[str, Any] = {
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "responses": {
                    "200": _json({"type": "object"}, "The OpenAPI document."),
                    **_UNAUTHORIZED,
                },
            }
        },
        "/api/meetings": {
            "get": {
                "operationId": "listMeetings",
                "summary": "Meetings that started in [since, until), oldest first.",
                "parameters": [
                    _time_param("since", "Started at or after"),
                    _time_param("until", "Started before"),
                    _text_param("teacher", "query", "Only this teacher's meetings."),
                    _text_param("room", "query", "Only meetings in this room."),
                    _text_param(
                        "platform", "query", "Only meetings on this platform (janus, room)."
                    ),
                    _FORMAT,
                ],
                "responses": {
                    "200": _json_or_csv(
                        _object({"meetings": {"type": "array", "items": _ref("MeetingInfo")}}),
                        "The meetings.",
                    ),
                    "400": _error("A filter could not be read."),
                    **_UNAUTHORIZED,
                },
            }
        },
        "/api/meetings/{meeting_id}": {
            "get": {
                "operationId": "getMeeting",
                "summary": "One meeting's summary: time per state for each student, alerts.",
                "parameters": [_MEETING_ID, _FORMAT],
                "responses": {
                    "200": _json_or_csv(
                        _ref("MeetingPage"), "The summary (CSV: one row per student)."
                    ),
                    "400": _error("A parameter could not be read."),
                    **_UNAUTHORIZED,
                    "404": _error("No meeting has this id."),
                },
            }
        },
        "/api/meetings/{meeting_id}/timeline": {
            "get": {
                "operationId": "getTimeline",
                "summary": "The class's engagement over time: shares of each state per bucket.",
                "parameters": [_MEETING_ID, _BUCKET, _FORMAT],
                "responses": {
                    "200": _json_or_csv(
                        _object(
                            {
                                "meeting_id": {"type": "string"},
                                "bucket_s": {"type": "number"},
                                "buckets": {"type": "array", "items": _ref("TimelineBucket")},
                            }
                        ),
                        "Buckets with samples, in time order.",
                    ),
                    "400": _error("A parameter could not be read."),
                    **_UNAUTHORIZED,
                    "404": _error("No meeting has this id."),
                },
            }
        },
        "/api/meetings/{meeting_id}/students": {
            "get": {
                "operationId": "getStudentLanes",
                "summary": "One lane per student: each student's state per bucket (the heat strips).",
                "parameters": [_MEETING_ID, _BUCKET, _FORMAT],
                "responses": {
                    "200": _json_or_csv(
                        _object(
                            {
                                "meeting_id": {"type": "string"},
                                "bucket_s": {"type": "number"},
                                "students": {"type": "array", "items": _ref("StudentLane")},
                            }
                        ),
                        "The lanes, by display name (CSV: one row per student and bucket).",
                    ),
                    "400": _error("A parameter could not be read."),
                    **_UNAUTHORIZED,
                    "404": _error("No meeting has this id."),
                },
            }
        },
        "/api/meetings/{meeting_id}/alerts": {
            "get": {
                "operationId": "getAlerts",
                "summary": "The alerts sent to the teacher during the meeting, in time order.",
                "parameters": [_MEETING_ID, _FORMAT],
                "responses": {
                    "200": _json_or_csv(
                        _object(
                            {
                                "meeting_id": {"type": "string"},
                                "alerts": {"type": "array", "items": _ref("AlertInfo")},
                            }
                        ),
                        "The alerts.",
                    ),
                    "400": _error("A parameter could not be read."),
                    **_UNAUTHORIZED,
                    "404": _error("No meeting has this id."),
                },
            }
        },
        "/api/meetings/{meeting_id}/live": {
            "get": {
                "operationId": "followMeeting",
                "summary": "Server-sent events while a bot is in the meeting: sample, state, alert, joined, "
                "left, consent, bot, lagged, closed; the stream ends with an 'end' event.",
                "parameters": [_MEETING_ID],
                "responses": {
                    "200": {
                        "description": "An event stream; each event's data is one JSON object.",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_UNAUTHORIZED,
                    "404": _error("No meeting has this id."),
                    "409": _error("The meeting is stored but no bot is in it now."),
                },
            }
        },
        "/api/students/{name}/history": {
            "get": {
                "operationId": "getStudentHistory",
                "summary": "One student (by display name) across meetings, oldest first.",
                "parameters": [
                    _text_param("name", "path", "The student's display name."),
                    _time_param("since", "Meetings started at or after"),
                    _time_param("until", "Meetings started before"),
                    _FORMAT,
                ],
                "responses": {
                    "200": _json_or_csv(
                        _object(
                            {
                                "display_name": {"type": "string"},
                                "meetings": {"type": "array", "items": _ref("StudentMeeting")},
                            }
                        ),
                        "One entry per meeting the student took part in.",
                    ),
                    "400": _error("A parameter could not be read."),
                    **_UNAUTHORIZED,
                    "404": _error("No stored participant has this display name."),
                },
            }
        },
        "/api/bots": {
            "get": {
                "operationId": "listBots",
                "summary": "The bots of this server, newest first.",
                "responses": {
                    "200": _json(
                        _object({"bots": {"type": "array", "items": _ref("Bot")}}), "The bots."
                    ),
                    **_UNAUTHORIZED,
                },
            },
            "post": {
                "operationId": "startBot",
                "summary": "Invite the bot into a meeting: it joins in the background.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("NewBot")}},
                },
                "responses": {
                    "201": _json(_ref("Bot"), "The bot, usually still starting."),
                    "400": _error("The body, the meeting URL or an option was wrong."),
                    **_UNAUTHORIZED,
                    "413": _error("The body is too large."),
                    "503": _error("This server cannot run bots."),
                },
            },
        },
        "/api/bots/{bot_id}": {
            "get": {
                "operationId": "getBot",
                "summary": "One bot.",
                "parameters": [_BOT_ID],
                "responses": {
                    "200": _json(_ref("Bot"), "The bot."),
                    **_UNAUTHORIZED,
                    "404": _error("No bot has this id."),
                },
            },
            "delete": {
                "operationId": "stopBot",
                "summary": "Make the bot leave its meeting.",
                "parameters": [_BOT_ID],
                "responses": {
                    "200": _json(_ref("Bot"), "The bot, leaving or gone."),
                    **_UNAUTHORIZED,
                    "404": _error("No bot has this id."),
                },
            },
        },
        "/api/model": {
            "get": {
                "operationId": "getModelReport",
                "summary": "The model's evaluation report and the plots beside it.",
                "responses": {
                    "200": _json(_ref("ModelReport"), "The report (empty when none)."),
                    **_UNAUTHORIZED,
                },
            }
        },
        "/api/model/files/{name}": {
            "get": {
                "operationId": "getModelFile",
                "summary": "One file of the model report (a plot, the report, a CSV).",
                "parameters": [
                    _text_param("name", "path", "A file name listed by GET /api/model.")
                ],
                "responses": {
                    "200": {
                        "description": "The file.",
                        "content": {
                            "image/png": {"schema": {"type": "string", "format": "binary"}},
                            "image/svg+xml": {"schema": {"type": "string"}},
                            "text/markdown": {"schema": {"type": "string"}},
                            "text/csv": {"schema": {"type": "string"}},
                            "application/json": {"schema": {}},
                        },
                    },
                    **_UNAUTHORIZED,
                    "404": _error("No report file has this name."),
                },
            }
        },
    }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "classpulse",
            "version": "1",
            "description": "Invite the engagement bot into a class, follow it live, and read the history. "
            "Every route needs 'Authorization: Bearer <token>'.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
