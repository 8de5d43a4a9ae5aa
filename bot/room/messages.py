"""The room's signalling messages: strict parsing of what a browser sends, and what it gets back.

Every message is one JSON object in a WebSocket text frame with a ``type``. Anything that is not
exactly one of the messages below is a :class:`ProtocolViolation`, whose close code and reason
the socket is closed with; the room itself never sees a malformed message.

Browser → server::

    {"type": "join", "name": "Aiko", "teacher": "<token of the teacher link>"?}  first, once
    {"type": "offer", "sdp": "v=0..."}                                          once, after welcome
    {"type": "camera", "on": true}
    {"type": "chat", "text": "...", "to": "<participant id>"?}                  to: a whisper

Server → browser: ``welcome``, ``answer``, ``participants``, ``tiles``, ``chat`` (see the
``*_message`` builders below).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.meetings.protocol import MAX_CHAT_CHARS, MAX_DISPLAY_NAME_CHARS

# WebSocket close codes. 1xxx are the standard ones; 4xxx mirror HTTP statuses.
CLOSE_GOING_AWAY = 1001  # the server or the room is shutting down
CLOSE_UNSUPPORTED = 1003  # a binary frame
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_BAD_MESSAGE = 4400
CLOSE_FORBIDDEN = 4403
CLOSE_NO_ROOM = 4404
CLOSE_TIMEOUT = 4408
CLOSE_CONFLICT = 4409
CLOSE_MEDIA_FAILED = 4410
CLOSE_RATE_LIMITED = 4429
CLOSE_ROOM_FULL = 4503

#: A close reason must fit a control frame (125 bytes, 2 of them the code).
MAX_REASON_BYTES = 123
_MAX_TOKEN_CHARS = 128
_MAX_ID_CHARS = 32


class ProtocolViolation(Exception):
    """A socket broke the protocol; it is closed with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def close_reason(text: str) -> str:
    """``text`` cut to what fits in a WebSocket close frame (whole characters only)."""
    data = text.encode()
    if len(data) <= MAX_REASON_BYTES:
        return text
    return data[: MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


@dataclass(frozen=True, slots=True)
class Join:
    #: As typed; the room normalises it.
    name: str
    #: The teacher token from the page's URL, or ``None`` for a student.
    teacher_token: str | None


@dataclass(frozen=True, slots=True)
class Offer:
    sdp: str


@dataclass(frozen=True, slots=True)
class Camera:
    on: bool


@dataclass(frozen=True, slots=True)
class Chat:
    text: str
    #: Participant id of the only recipient, or ``None`` for everyone.
    to: str | None


ClientMessage = Join | Offer | Camera | Chat


def parse_client_message(data: str, *, max_bytes: int) -> ClientMessage:
    """Parse one text frame. Raises :class:`ProtocolViolation` for anything but a valid message."""
    if len(data) > max_bytes or len(data.encode(errors="replace")) > max_bytes:
        raise ProtocolViolation(CLOSE_TOO_BIG, f"message over {max_bytes} bytes")
    try:
        message = json.loads(data)
    except (ValueError, RecursionError):
        raise ProtocolViolation(CLOSE_BAD_MESSAGE, "malformed JSON") from None
    if not isinstance(message, dict):
        raise ProtocolViolation(
            CLOSE_BAD_MESSAGE, f"expected a JSON object, received {type(message).__name__}"
        )
    kind = message.get("type")
    parser: Callable[[dict[str, Any]], ClientMessage] | None = (
        _PARSERS.get(kind) if isinstance(kind, str) else None
    )
    if parser is None:
        shown = kind[:32] if isinstance(kind, str) else type(kind).__name__
        raise ProtocolViolation(
            CLOSE_BAD_MESSAGE,
            f"unknown message type {shown!r}; expected one of {', '.join(_PARSERS)}",
        )
    return parser(message)


def _fields(
    message: dict[str, Any], required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> None:
    kind = message["type"]
    missing = [key for key in required if key not in message]
    if missing:
        raise ProtocolViolation(CLOSE_BAD_MESSAGE, f"{kind}: missing {', '.join(missing)}")
    unknown = sorted(set(message) - {"type", *required, *optional})
    if unknown:
        raise ProtocolViolation(CLOSE_BAD_MESSAGE, f"{kind}: unknown field {unknown[0][:32]!r}")


def _string(message: dict[str, Any], key: str, max_chars: int, *, allow_empty: bool = False) -> str:
    value = message[key]
    if not isinstance(value, str):
        raise ProtocolViolation(
            CLOSE_BAD_MESSAGE,
            f"{message['type']}.{key}: expected a string, received {type(value).__name__}",
        )
    if len(value) > max_chars:
        raise ProtocolViolation(
            CLOSE_BAD_MESSAGE, f"{message['type']}.{key}: over {max_chars} characters"
        )
    if not allow_empty and not value.strip():
        raise ProtocolViolation(CLOSE_BAD_MESSAGE, f"{message['type']}.{key}: empty")
    return value


def _parse_join(message: dict[str, Any]) -> Join:
    _fields(message, ("name",), ("teacher",))
    token = message.get("teacher")
    if token is not None:
        token = _string(message, "teacher", _MAX_TOKEN_CHARS)
    return Join(_string(message, "name", MAX_DISPLAY_NAME_CHARS * 4), token)


def _parse_offer(message: dict[str, Any]) -> Offer:
    _fields(message, ("sdp",))
    sdp = _string(message, "sdp", 1 << 20)
    if not sdp.startswith("v=0") or "\nm=" not in sdp:
        raise ProtocolViolation(
            CLOSE_BAD_MESSAGE, "offer.sdp: not a session description (expected v=0 and m= lines)"
        )
    if "\x00" in sdp:
        raise ProtocolViolation(CLOSE_BAD_MESSAGE, "offer.sdp: contains NUL characters")
    return Offer(sdp)


def _parse_camera(message: dict[str, Any]) -> Camera:
    _fields(message, ("on",))
    if not isinstance(message["on"], bool):
        raise ProtocolViolation(CLOSE_BAD_MESSAGE, "camera.on: expected true or false")
    return Camera(message["on"])


def _parse_chat(message: dict[str, Any]) -> Chat:
    _fields(message, ("text",), ("to",))
    to = message.get("to")
    if to is not None:
        to = _string(message, "to", _MAX_ID_CHARS)
    return Chat(_string(message, "text", MAX_CHAT_CHARS), to)


_PARSERS: dict[str, Callable[[dict[str, Any]], ClientMessage]] = {
    "join": _parse_join,
    "offer": _parse_offer,
    "camera": _parse_camera,
    "chat": _parse_chat,
}


# -- server → browser ------------------------------------------------------------------------


def welcome_message(
    *, participant_id: str, name: str, role: str, room: str, num_tiles: int
) -> dict[str, Any]:
    """After a join: who you are and how many receive-only video slots your offer must carry."""
    return {
        "type": "welcome",
        "id": participant_id,
        "name": name,
        "role": role,
        "room": room,
        "tiles": num_tiles,
    }


def answer_message(sdp: str) -> dict[str, Any]:
    return {"type": "answer", "sdp": sdp}


def participants_message(people: list[dict[str, Any]]) -> dict[str, Any]:
    """Everyone present: ``[{"id", "name", "role", "camera"}]``, in join order."""
    return {"type": "participants", "participants": people}


def tiles_message(tiles: list[dict[str, Any]]) -> dict[str, Any]:
    """Which receive slot (by SDP ``mid``) shows whom: ``[{"mid", "id", "name"}]``."""
    return {"type": "tiles", "tiles": tiles}


def chat_message(
    *, sender_id: str, sender_name: str, sender_role: str, text: str, whisper: bool, t: float
) -> dict[str, Any]:
    """A chat line; ``whisper``: sent to this one recipient only (alerts reach the teacher so)."""
    return {
        "type": "chat",
        "from": {"id": sender_id, "name": sender_name, "role": sender_role},
        "text": text,
        "whisper": whisper,
        "t": t,
    }
