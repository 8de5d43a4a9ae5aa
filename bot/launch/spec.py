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
    #: Where the server POSTs the bot's lifecycle (the actor never sends it): kept with the
    #: actor so that a restarted server adopting it goes on sending them.
    webhook_url: str | None = None
    webhook_secret: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class ScoringFigures:
    """An incarnation's inference and media figures (``/metrics``); its counters restart with
    the incarnation (the server carries the dead ones' totals)."""

    crops_scored: int = 0
    dropped_stale: int = 0
    dropped_overflow: int = 0
    dropped_restart: int = 0
    media_worker_restarts: int = 0
    #: Of this incarnation's recent frames (0 before any, or without an inference process).
    latency_p50_s: float = 0.0
    latency_p95_s: float = 0.0
    #: The frame-to-state lag histogram: (upper bound, cumulative count), ``inf`` last.
    lag_buckets: tuple[tuple[float, int], ...] = ()
    lag_total_s: float = 0.0
    lag_count: int = 0

    @staticmethod
    def merged(figures: list[ScoringFigures]) -> ScoringFigures:
        """Counters and the lag histogram summed; latency the worst (largest) of the parts:
        quantiles of separate inference processes cannot be summed, and the slowest class is
        the one an operator must see."""
        buckets: dict[float, int] = {}
        for part in figures:
            for bound, count in part.lag_buckets:
                buckets[bound] = buckets.get(bound, 0) + count
        return ScoringFigures(
            crops_scored=sum(f.crops_scored for f in figures),
            dropped_stale=sum(f.dropped_stale for f in figures),
            dropped_overflow=sum(f.dropped_overflow for f in figures),
            dropped_restart=sum(f.dropped_restart for f in figures),
            media_worker_restarts=sum(f.media_worker_restarts for f in figures),
            latency_p50_s=max((f.latency_p50_s for f in figures), default=0.0),
            latency_p95_s=max((f.latency_p95_s for f in figures), default=0.0),
            lag_buckets=tuple(sorted(buckets.items())),
            lag_total_s=sum(f.lag_total_s for f in figures),
            lag_count=sum(f.lag_count for f in figures),
        )


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
    #: Once it failed or left: the stable code (``bot.outcomes.BotCode``) and its sentence.
    code: str | None = None
    message: str | None = None
    figures: ScoringFigures = field(default_factory=ScoringFigures)

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
