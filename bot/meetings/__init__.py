"""Meeting connectors: how the bot joins a class, sees who is there, gets their video, chats.

The session code uses only ``protocol`` (the interface and its events), ``frames`` (the per-
participant newest-frame source) and ``connect()``, which picks the connector for a meeting URL.
"""

from __future__ import annotations

from bot.meetings.frames import FrameSource, FrameSourceClosedError, ReceivedFrame
from bot.meetings.protocol import (
    ChatReceived,
    ChatUnavailableError,
    ConnectionLost,
    ConnectionRestored,
    MeetingConnector,
    MeetingEnded,
    MeetingError,
    MeetingEvent,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    VideoTrackAdded,
    VideoTrackRemoved,
    normalize_display_name,
)
from bot.meetings.url import (
    BuiltinMeetingUrl,
    JanusMeetingUrl,
    parse_any_meeting_url,
    parse_meeting_url,
)

__all__ = [
    "BuiltinMeetingUrl",
    "ChatReceived",
    "ChatUnavailableError",
    "ConnectionLost",
    "ConnectionRestored",
    "FrameSource",
    "FrameSourceClosedError",
    "JanusMeetingUrl",
    "MeetingConnector",
    "MeetingEnded",
    "MeetingError",
    "MeetingEvent",
    "Participant",
    "ParticipantJoined",
    "ParticipantLeft",
    "ReceivedFrame",
    "VideoTrackAdded",
    "VideoTrackRemoved",
    "connector_for",
    "normalize_display_name",
    "parse_any_meeting_url",
    "parse_meeting_url",
]


def connector_for(url: str, *, display_name: str = "classpulse bot") -> MeetingConnector:
    """The connector for a meeting URL (only ``janus+ws://`` / ``janus+wss://`` so far)."""
    from bot.meetings.janus import JanusConnector

    return JanusConnector(parse_meeting_url(url), display_name=display_name)
