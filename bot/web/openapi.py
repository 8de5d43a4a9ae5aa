"""The OpenAPI 3.1 document served at ``/api/openapi.json``.

A test compares its paths with the routes the app registers and fuzzes every operation against
it (schemathesis); the schemas come from ``bot.web.schemas``.
"""

from __future__ import annotations

from typing import Any

from bot.web.schemas import (
    BOT_ID,
    BUCKET,
    FORMAT,
    MEETING_ID,
    ROOM,
    UNAUTHORIZED,
    component_schemas,
    error_answer,
    json_answer,
    json_object,
    json_or_csv,
    ref,
    text_param,
    time_param,
)

OPENAPI_VERSION = "3.1.0"


def _meeting_read(
    operation_id: str,
    summary: str,
    parameters: list[dict[str, Any]],
    body: dict[str, Any],
    description: str,
) -> dict[str, Any]:
    """A GET under ``/api/meetings/{meeting_id}``: JSON or CSV, 400 / 401 / 404 like the rest."""
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "parameters": parameters,
            "responses": {
                "200": json_or_csv(body, description),
                "400": error_answer("A parameter could not be read."),
                **UNAUTHORIZED,
                "404": error_answer("No meeting has this id."),
            },
        }
    }


def _listing(key: str, item: str, *, bucketed: bool = False) -> dict[str, Any]:
    """``{meeting_id, [bucket_s,] key: [item, ...]}``."""
    fields: dict[str, Any] = {"meeting_id": {"type": "string"}}
    if bucketed:
        fields["bucket_s"] = {"type": "number"}
    fields[key] = {"type": "array", "items": ref(item)}
    return json_object(fields)


def build_document() -> dict[str, Any]:
    """The whole OpenAPI document (a fresh dict each call)."""
    paths: dict[str, Any] = {
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "responses": {
                    "200": json_answer({"type": "object"}, "The OpenAPI document."),
                    **UNAUTHORIZED,
                },
            }
        },
        "/api/meetings": {
            "get": {
                "operationId": "listMeetings",
                "summary": "Meetings that started in [since, until), oldest first.",
                "parameters": [
                    time_param("since", "Started at or after"),
                    time_param("until", "Started before"),
                    text_param("teacher", "query", "Only this teacher's meetings."),
                    text_param("room", "query", "Only meetings in this room."),
                    text_param(
                        "platform", "query", "Only meetings on this platform (janus, room)."
                    ),
                    FORMAT,
                ],
                "responses": {
                    "200": json_or_csv(
                        json_object({"meetings": {"type": "array", "items": ref("MeetingInfo")}}),
                        "The meetings.",
                    ),
                    "400": error_answer("A filter could not be read."),
                    **UNAUTHORIZED,
                },
            }
        },
        "/api/meetings/{meeting_id}": _meeting_read(
            "getMeeting",
            "One meeting's summary: time per state for each student, alerts.",
            [MEETING_ID, FORMAT],
            ref("MeetingPage"),
            "The summary (CSV: one row per student).",
        ),
        "/api/meetings/{meeting_id}/timeline": _meeting_read(
            "getTimeline",
            "The class's engagement over time: shares of each state per bucket.",
            [MEETING_ID, BUCKET, FORMAT],
            _listing("buckets", "TimelineBucket", bucketed=True),
            "Buckets with samples, in time order.",
        ),
        "/api/meetings/{meeting_id}/students": _meeting_read(
            "getStudentLanes",
            "One lane per student: their state per bucket (the heat strips).",
            [MEETING_ID, BUCKET, FORMAT],
            _listing("students", "StudentLane", bucketed=True),
            "The lanes, by display name (CSV: one row per student and bucket).",
        ),
        "/api/meetings/{meeting_id}/alerts": _meeting_read(
            "getAlerts",
            "The alerts sent to the teacher during the meeting, in time order.",
            [MEETING_ID, FORMAT],
            _listing("alerts", "AlertInfo"),
            "The alerts.",
        ),
        "/api/meetings/{meeting_id}/report": {
            "get": {
                "operationId": "getReport",
                "summary": "The post-class report: one printable, self-contained HTML page "
                "(title, date, coverage, the class curve, a lane per student, time per state, "
                "alerts, the model's limits), as `classpulse report` writes it.",
                "parameters": [MEETING_ID],
                "responses": {
                    "200": {
                        "description": "The page (sent as an attachment, report-ID.html).",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    "400": error_answer("A parameter could not be read."),
                    **UNAUTHORIZED,
                    "404": error_answer("No meeting has this id."),
                },
            }
        },
        "/api/meetings/{meeting_id}/live": {
            "get": {
                "operationId": "followMeeting",
                "summary": "Server-sent events while a bot is in the meeting: bot (first), then "
                "the session's sample, state, coverage (visible, total), alert, joined, left, "
                "opt_out, gap and ended; "
                "the stream closes with an 'end' event.",
                "parameters": [MEETING_ID],
                "responses": {
                    "200": {
                        "description": "An event stream; each event's data is one JSON object.",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **UNAUTHORIZED,
                    "404": error_answer("No meeting has this id."),
                    "409": error_answer("The meeting is stored but no bot is in it now."),
                },
            }
        },
        "/api/students/{name}/history": {
            "get": {
                "operationId": "getStudentHistory",
                "summary": "One student (by display name) across meetings, oldest first.",
                "parameters": [
                    text_param("name", "path", "The student's display name."),
                    time_param("since", "Meetings started at or after"),
                    time_param("until", "Meetings started before"),
                    FORMAT,
                ],
                "responses": {
                    "200": json_or_csv(
                        json_object(
                            {
                                "display_name": {"type": "string"},
                                "meetings": {"type": "array", "items": ref("StudentMeeting")},
                            }
                        ),
                        "One entry per meeting the student took part in.",
                    ),
                    "400": error_answer("A parameter could not be read."),
                    **UNAUTHORIZED,
                    "404": error_answer("No stored participant has this display name."),
                },
            }
        },
        "/api/bots": {
            "get": {
                "operationId": "listBots",
                "summary": "The bots of this server, newest first.",
                "responses": {
                    "200": json_answer(
                        json_object({"bots": {"type": "array", "items": ref("Bot")}}), "The bots."
                    ),
                    **UNAUTHORIZED,
                },
            },
            "post": {
                "operationId": "startBot",
                "summary": "Invite the bot into a meeting: it joins in the background. The answer "
                "holds the teacher code the teacher whispers to the bot (!claim CODE).",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("NewBot")}},
                },
                "responses": {
                    "201": json_answer(ref("Bot"), "The bot, usually still starting."),
                    "400": error_answer("The body, the meeting URL or an option was wrong."),
                    **UNAUTHORIZED,
                    "409": error_answer("A bot is in this meeting already (bot_id names it)."),
                    "413": error_answer("The body is too large."),
                    "503": error_answer("This server cannot run bots, or runs its maximum."),
                },
            },
        },
        "/api/bots/{bot_id}": {
            "get": {
                "operationId": "getBot",
                "summary": "One bot.",
                "parameters": [BOT_ID],
                "responses": {
                    "200": json_answer(ref("Bot"), "The bot."),
                    **UNAUTHORIZED,
                    "404": error_answer("No bot has this id."),
                },
            },
            "delete": {
                "operationId": "stopBot",
                "summary": "Make the bot leave its meeting.",
                "parameters": [BOT_ID],
                "responses": {
                    "200": json_answer(ref("Bot"), "The bot, leaving or gone."),
                    **UNAUTHORIZED,
                    "404": error_answer("No bot has this id."),
                },
            },
        },
        "/api/rooms": {
            "get": {
                "operationId": "listRooms",
                "summary": "The open built-in class rooms, oldest first.",
                "responses": {
                    "200": json_answer(
                        json_object({"rooms": {"type": "array", "items": ref("Room")}}),
                        "The rooms.",
                    ),
                    **UNAUTHORIZED,
                },
            },
            "post": {
                "operationId": "openRoom",
                "summary": "Open a built-in class room: the answer has the teacher's and the "
                "students' links; invite the bot with meeting_url builtin:ROOM. Open rooms "
                "survive a restart of the server.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("NewRoom")}},
                },
                "responses": {
                    "201": json_answer(ref("Room"), "The room, open."),
                    "400": error_answer("The body or the title was wrong (field names it)."),
                    **UNAUTHORIZED,
                    "413": error_answer("The body is too large."),
                    "503": error_answer("No built-in room here, or the most rooms are open."),
                },
            },
        },
        "/api/rooms/{room}": {
            "get": {
                "operationId": "getRoom",
                "summary": "One open room and its links.",
                "parameters": [ROOM],
                "responses": {
                    "200": json_answer(ref("Room"), "The room."),
                    **UNAUTHORIZED,
                    "404": error_answer("No open room has this name."),
                },
            },
            "delete": {
                "operationId": "closeRoom",
                "summary": "Close the room: everyone is disconnected and the bot leaves.",
                "parameters": [ROOM],
                "responses": {
                    "204": {"description": "Closed."},
                    **UNAUTHORIZED,
                    "404": error_answer("No open room has this name."),
                },
            },
        },
        "/api/model": {
            "get": {
                "operationId": "getModelReport",
                "summary": "The model's evaluation report and the plots beside it.",
                "responses": {
                    "200": json_answer(ref("ModelReport"), "The report (empty when none)."),
                    **UNAUTHORIZED,
                },
            }
        },
        "/api/model/files/{name}": {
            "get": {
                "operationId": "getModelFile",
                "summary": "One file of the model report (a plot, the report, a CSV).",
                "parameters": [text_param("name", "path", "A file name listed by GET /api/model.")],
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
                    **UNAUTHORIZED,
                    "404": error_answer("No report file has this name."),
                },
            }
        },
    }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "classpulse",
            "version": "1",
            "description": "Open a class room or invite the engagement bot into a class, follow it live, "
            "and read the history. "
            "Every route needs 'Authorization: Bearer <token>'.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": component_schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
