"""The values that cross between the server and a bot's Ray actor: what to run, how it goes.

Plain frozen dataclasses (pickled by Ray), no Ray import: the server builds a ``BotSpec`` once,
Ray hands the same one to every incarnation of the actor (a restart resumes the same meeting),
and the actor answers each poll with an ``ActorStatus`` and the live events since the cursor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The gap alert's kind in storage (``AlertRaised.kind``): the bot's actor died and Ray
#: restarted it; nothing was analysed between the last stored row and the rejoin.
RESTART_GAP_KIND = "bot_restart"


@dataclass(frozen=True, slots=True)
class BotSpec:
    """One class to follow. ``meeting_url`` carries its secrets (room PIN): it travels only
    inside the cluster, never back to an API answer (``meeting_key`` is the redacted one)."""

    bot_id: str
    meeting_url: str = field(repr=False)
    #: The URL without secrets, as the API shows it.
    meeting_key: str
    teacher: str
    options: dict[str, Any]
    #: Made by the server once, so that a restarted actor keeps the code the teacher was given.
    teacher_code: str = field(repr=False)
    #: Made by the server once: every incarnation writes into the same stored meeting.
    meeting_id: str
    #: SQLAlchemy URL every node reaches (PostgreSQL for a cluster).
    database_url: str = field(repr=False)
    #: Unix seconds when the API was asked.
    started_at: float
    #: Media worker processes inside the actor (1: decode in the actor's own process).
    num_media_workers: int = 1


@dataclass(frozen=True, slots=True)
class ActorStatus:
    """A bot as its actor sees it now; the server's ``BotInfo`` and ``/metrics`` come from it."""

    #: ``starting``, ``running``, ``leaving``, ``ended`` or ``failed`` (``bot.web.bots.BotState``).
    state: str
    meeting_id: str
    teacher_code: str = field(default="", repr=False)
    error: str | None = None
    stop_reason: str | None = None
    num_alerts: int = 0
    paused: bool = False
    num_followed: int = 0
    num_frames_analysed: int = 0
    #: Storage writer figures of this actor (rows).
    rows_submitted: int = 0
    rows_written: int = 0
    rows_pending: int = 0
    rows_dropped: int = 0
    #: Ray node the actor runs on (hex id) and its process id.
    node_id: str = ""
    pid: int = 0
    #: This incarnation is a restart by Ray (the meeting resumed, the gap recorded).
    restarted: bool = False
    #: True once the actor closed its runtime (writer flushed, inference stopped).
    closed: bool = False

    @property
    def finished(self) -> bool:
        return self.state in ("ended", "failed") and self.closed


@dataclass(frozen=True, slots=True)
class PollAnswer:
    """The actor's answer to ``poll``: its status and the live events after the cursor."""

    status: ActorStatus
    #: Changes with each incarnation: the server's cursor restarts at 0 on a new one.
    incarnation: str
    #: (sequence number, event), oldest first; the sequence restarts with the incarnation.
    events: list[tuple[int, dict[str, Any]]]
