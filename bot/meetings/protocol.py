"""The one interface every meeting connector implements, and the events it emits.

The bot's session code talks only to :class:`MeetingConnector`: it never sees Janus, SDP or
aiortc objects, so a second connector (the built-in room) can be dropped in.

Event order a consumer can rely on, per connector:

- every ``ParticipantJoined`` is eventually matched by one ``ParticipantLeft`` for the same
  ``participant.id`` (at the latest when the connection is lost or the bot leaves);
- ``VideoTrackAdded`` comes after the participant's ``ParticipantJoined`` and is matched by a
  ``VideoTrackRemoved`` before their ``ParticipantLeft``; a participant has at most one video at a
  time; the ``FrameSource`` in ``VideoTrackAdded`` ends when the video is removed;
- ``ConnectionLost`` is followed by ``VideoTrackRemoved`` / ``ParticipantLeft`` for everyone, then,
  once the connector is back, ``ConnectionRestored`` and fresh ``ParticipantJoined`` events (with
  new ids: identity across a reconnect is the display name, as for a student who rejoins);
- ``MeetingEnded`` is the last event before the stream ends on its own (room destroyed, bot
  kicked); after ``leave()`` the stream ends without it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from bot.meetings.frames import FrameSource
from bot.meetings.remote_video import RemoteVideo

#: Longest display name kept; longer names are cut with "…" (a name is a label, not a payload).
MAX_DISPLAY_NAME_CHARS = 64
#: Longest chat message a connector sends; longer texts are refused with ``ValueError``.
MAX_CHAT_CHARS = 4000


class MeetingError(Exception):
    """The meeting cannot be joined or used (bad room, wrong PIN, server unreachable at join)."""


class ChatUnavailableError(MeetingError):
    """A chat message could not be sent: chat not joined yet, or the recipient has no chat."""


@dataclass(frozen=True, slots=True)
class Participant:
    """Someone in the meeting other than the bot."""

    #: Connector-made id, unique and stable while this person is present (not across reconnects).
    id: str
    #: Display name, normalised by :func:`normalize_display_name`. A label for people: it
    #: grants nothing (anyone can type any name).
    display_name: str
    #: The platform itself vouches that this is the meeting's teacher (the built-in room's
    #: teacher link). Janus has no such notion: there the teacher claims with a code.
    is_host: bool = False


@dataclass(frozen=True, slots=True)
class ParticipantJoined:
    participant: Participant


@dataclass(frozen=True, slots=True)
class ParticipantLeft:
    participant: Participant


@dataclass(frozen=True, slots=True)
class VideoTrackAdded:
    """A participant's camera is available; read frames from ``source`` (newest frame wins), or,
    when a media worker decodes it, the faces found in them (``RemoteVideo``)."""

    participant: Participant
    source: FrameSource | RemoteVideo = field(compare=False)
    #: Codec name as negotiated, e.g. ``"vp8"`` or ``"h264"``.
    codec: str = ""


@dataclass(frozen=True, slots=True)
class VideoTrackRemoved:
    participant: Participant


@dataclass(frozen=True, slots=True)
class ChatReceived:
    """A chat message from a participant to everyone, or to the bot alone (``whisper``)."""

    sender: Participant
    text: str
    whisper: bool
    #: Wall-clock time of arrival, seconds since the epoch.
    t: float


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The connector lost the meeting server; it tears down and keeps re-joining with backoff."""

    reason: str
    #: Wall-clock time the loss was noticed, seconds since the epoch.
    t: float


@dataclass(frozen=True, slots=True)
class ConnectionRestored:
    """The connector is back in the meeting after a ``ConnectionLost``."""

    #: Wall-clock time, seconds since the epoch.
    t: float
    #: Seconds between the loss being noticed and the re-join completing.
    gap_s: float


@dataclass(frozen=True, slots=True)
class MeetingEnded:
    """The meeting is over for the bot (room destroyed, bot kicked); no more events follow."""

    reason: str


MeetingEvent = (
    ParticipantJoined
    | ParticipantLeft
    | VideoTrackAdded
    | VideoTrackRemoved
    | ChatReceived
    | ConnectionLost
    | ConnectionRestored
    | MeetingEnded
)


@runtime_checkable
class MeetingConnector(Protocol):
    """One meeting, seen by the bot. Implementations: ``JanusConnector`` (built-in room to come).

    Usage::

        connector = JanusConnector(parse_meeting_url(url), display_name="classpulse bot")
        await connector.join()                 # raises MeetingError when the meeting is unusable
        try:
            async for event in connector.events():
                ...
        finally:
            await connector.leave()
    """

    #: The bot's own display name as the others see it.
    display_name: str

    async def join(self) -> None:
        """Enter the meeting. Raises ``MeetingError`` if the first attempt fails; after it
        succeeded, losses are handled inside the connector (``ConnectionLost`` / ``Restored``)."""
        ...

    async def leave(self) -> None:
        """Leave, cancel every task, close every peer connection and frame source. Idempotent."""
        ...

    def events(self) -> AsyncIterator[MeetingEvent]:
        """The event stream (a single consumer). Ends after ``leave()`` or ``MeetingEnded``."""
        ...

    async def send_chat(self, text: str, to: Participant | None = None) -> None:
        """Send ``text`` to everyone, or privately to ``to`` only.

        Raises ``ChatUnavailableError`` when chat is down or ``to`` has no chat presence, and
        ``ValueError`` for an empty text or one over ``MAX_CHAT_CHARS``."""
        ...

    def participants(self) -> tuple[Participant, ...]:
        """Everyone present now (not the bot)."""
        ...


def normalize_display_name(name: object, fallback: str = "anonymous") -> str:
    """The form every connector reports and the session compares names in.

    NFC-normalised, control and format characters dropped, whitespace collapsed, cut to
    ``MAX_DISPLAY_NAME_CHARS``; ``fallback`` when nothing printable is left. Names come from
    untrusted clients: this keeps logs, chat alerts and the database free of newlines, bidi
    overrides and megabyte-long "names"."""
    if not isinstance(name, str):
        return fallback
    text = unicodedata.normalize("NFC", name[: MAX_DISPLAY_NAME_CHARS * 8])
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch)[0] != "C"
    )
    collapsed = " ".join(kept.split())
    if not collapsed:
        return fallback
    if len(collapsed) > MAX_DISPLAY_NAME_CHARS:
        collapsed = collapsed[: MAX_DISPLAY_NAME_CHARS - 1].rstrip() + "…"
    return collapsed


def check_chat_text(text: object) -> str:
    """Validate an outgoing chat text; returns it unchanged."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"Expected a non-empty chat text. Received: {text!r}")
    if len(text) > MAX_CHAT_CHARS:
        raise ValueError(
            f"Expected a chat text of at most {MAX_CHAT_CHARS} characters. "
            f"Received: {len(text)} characters"
        )
    return text
