"""Meeting URLs: which server, room and credentials a connector joins.

Two kinds: Janus (below), and the built-in room of the running classpulse server::

    builtin:NAME      NAME: letters, digits, '-' and '_' (at most 64), not starting with - or _

``builtin:`` rooms live inside the ``classpulse serve`` process (``bot.room``), so the bot joins
them in-process; ``parse_any_meeting_url`` reads either kind.

Format (Janus)::

    janus+ws://HOST[:PORT][/PATH]?room=ROOM[&textroom=ROOM][&pin=PIN][&textpin=PIN]
                                       [&apisecret=SECRET][&token=TOKEN]
    janus+wss://...   (same, over TLS)

- ``HOST``: name or IP address of the Janus server (IPv6 in brackets: ``[::1]``).
- ``PORT``: its WebSocket transport port; default 8188 for ``janus+ws``, 8989 for ``janus+wss``
  (Janus's own defaults). ``PATH`` defaults to ``/``.
- ``room`` (required): numeric id of the VideoRoom whose publishers the bot watches.
- ``textroom``: numeric id of the TextRoom used for chat; default: the same number as ``room``.
- ``pin``: the VideoRoom's PIN, when it has one; also used for the TextRoom unless ``textpin`` is
  given.
- ``apisecret`` / ``token``: Janus API secret or auth token, when the server requires one.

Example: ``janus+ws://127.0.0.1:8188/?room=1234&textroom=1234&pin=class7``. Values are
percent-decoded. Unknown parameters are refused rather than ignored, so that a typo in ``pin``
is not silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

_DEFAULT_PORTS = {"ws": 8188, "wss": 8989}
_KNOWN_PARAMETERS = ("room", "textroom", "pin", "textpin", "apisecret", "token")
_MAX_ROOM_ID = 2**53 - 1  # Janus room ids are JSON numbers; keep them exact in JavaScript too.
BUILTIN_SCHEME = "builtin"
#: Built-in room names are path segments and log labels: short, plain, no escaping anywhere.
BUILTIN_ROOM_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"


@dataclass(frozen=True, slots=True)
class JanusMeetingUrl:
    """A parsed ``janus+ws://`` / ``janus+wss://`` meeting URL (see the module docstring)."""

    #: ``"ws"`` or ``"wss"``.
    transport: str
    host: str
    port: int
    path: str
    #: VideoRoom id.
    room: int
    #: TextRoom id (chat).
    text_room: int
    pin: str | None = None
    text_pin: str | None = None
    api_secret: str | None = None
    token: str | None = None

    @property
    def websocket_url(self) -> str:
        """The plain WebSocket URL of Janus's transport, e.g. ``ws://127.0.0.1:8188/``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}://{host}:{self.port}{self.path}"

    def redacted(self) -> str:
        """The URL without its secrets, for logs."""
        return f"janus+{self.websocket_url}?room={self.room}&textroom={self.text_room}"


def parse_meeting_url(url: str) -> JanusMeetingUrl:
    """Parse a meeting URL; raises ``ValueError`` naming what was expected and what was received."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError(
            f"Expected a meeting URL such as janus+ws://HOST:8188/?room=1234. Received: {url!r}"
        )
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if not scheme.startswith("janus+") or scheme[len("janus+") :] not in _DEFAULT_PORTS:
        raise ValueError(
            "Expected a meeting URL starting with janus+ws:// or janus+wss://. "
            f"Received: {_shorten(url)!r}"
        )
    transport = scheme[len("janus+") :]
    try:
        host = parts.hostname
        port = parts.port
    except ValueError as error:  # a port that is not a number or out of range
        raise ValueError(
            "Expected a numeric port from 1 to 65535 in the meeting URL. "
            f"Received: {_shorten(url)!r}"
        ) from error
    if not host:
        raise ValueError(
            "Expected a host in the meeting URL (janus+ws://HOST:PORT/?room=ID). "
            f"Received: {_shorten(url)!r}"
        )
    if parts.username or parts.password:
        raise ValueError(
            "Expected no user:password@ in the meeting URL (credentials go in apisecret= or "
            "token=). "
            f"Received: {_shorten(url)!r}"
        )
    if parts.fragment:
        raise ValueError(f"Expected no #fragment in the meeting URL. Received: {_shorten(url)!r}")
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as error:
        raise ValueError(
            f"Expected query parameters as key=value&key=value. Received: {parts.query!r}"
        ) from error
    unknown = sorted(set(query) - set(_KNOWN_PARAMETERS))
    if unknown:
        raise ValueError(
            f"Expected only the parameters {', '.join(_KNOWN_PARAMETERS)} in the meeting URL. "
            f"Received unknown: {', '.join(unknown)}"
        )
    repeated = sorted(key for key, values in query.items() if len(values) > 1)
    if repeated:
        raise ValueError(
            "Expected each parameter once in the meeting URL. "
            f"Received repeated: {', '.join(repeated)}"
        )
    values = {key: items[0] for key, items in query.items()}
    if "room" not in values:
        raise ValueError(
            "Expected room=ID (the VideoRoom number) in the meeting URL. "
            f"Received: {_shorten(url)!r}"
        )
    room = _room_id("room", values["room"])
    text_room = _room_id("textroom", values["textroom"]) if "textroom" in values else room
    return JanusMeetingUrl(
        transport=transport,
        host=host,
        port=port if port is not None else _DEFAULT_PORTS[transport],
        path=parts.path or "/",
        room=room,
        text_room=text_room,
        pin=_optional(values.get("pin")),
        text_pin=_optional(values.get("textpin")),
        api_secret=_optional(values.get("apisecret")),
        token=_optional(values.get("token")),
    )


def _room_id(name: str, value: str) -> int:
    if not value.isascii() or not value.isdigit() or not 0 < int(value) <= _MAX_ROOM_ID:
        raise ValueError(
            f"Expected {name}= to be a positive whole number (a Janus room id). Received: {value!r}"
        )
    return int(value)


def _optional(value: str | None) -> str | None:
    return value if value else None


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass(frozen=True, slots=True)
class BuiltinMeetingUrl:
    """A parsed ``builtin:NAME`` URL: a room of the built-in room server in this process."""

    room: str

    def redacted(self) -> str:
        """The URL itself (it holds no secret: the teacher token is never part of it)."""
        return f"{BUILTIN_SCHEME}:{self.room}"


def is_builtin_url(url: object) -> bool:
    """True for ``builtin:…`` (valid or not): which parser a URL belongs to."""
    return isinstance(url, str) and url.strip().lower().startswith(BUILTIN_SCHEME + ":")


def parse_builtin_url(url: str) -> BuiltinMeetingUrl:
    """Parse ``builtin:NAME``; raises ``ValueError`` naming what was expected and received."""
    text = url.strip() if isinstance(url, str) else ""
    if not is_builtin_url(text):
        raise ValueError(
            f"Expected a built-in room URL such as builtin:class7. Received: {_shorten(str(url))!r}"
        )
    name = text[len(BUILTIN_SCHEME) + 1 :]
    if not re.fullmatch(BUILTIN_ROOM_PATTERN, name):
        raise ValueError(
            "Expected builtin:NAME with a room name of letters, digits, '-' and '_' (at most 64). "
            f"Received: {_shorten(text)!r}"
        )
    return BuiltinMeetingUrl(name)


def parse_any_meeting_url(url: str) -> JanusMeetingUrl | BuiltinMeetingUrl:
    """Either kind of meeting URL (``janus+ws[s]://…`` or ``builtin:NAME``)."""
    return parse_builtin_url(url) if is_builtin_url(url) else parse_meeting_url(url)
