"""Bot management as the web app sees it: a ``BotManager`` protocol and the values it returns.

The real manager wraps the bot runtime (``bot/runtime.py``: one session per meeting, one shared
writer and inference process); tests use a small fake with the same protocol. Live events are
the session's own JSON-ready dicts from ``bot.live.LiveFeed`` (``{"type": "sample", ...}``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from bot.live import LiveFeed


class BotState(StrEnum):
    """A bot's life (the session's own words): ``starting`` → ``running`` → ``leaving`` →
    ``ended``, or ``failed`` when it could not join or crashed."""

    STARTING = "starting"
    RUNNING = "running"
    LEAVING = "leaving"
    ENDED = "ended"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """True while the bot is (or is about to be) in its meeting."""
        return self in (BotState.STARTING, BotState.RUNNING, BotState.LEAVING)


@dataclass(frozen=True, slots=True)
class BotInfo:
    """One bot, as the API shows it."""

    bot_id: str
    #: The meeting URL without secrets: it is shown to anyone holding the API token and logged.
    meeting_url: str
    teacher: str
    state: BotState
    #: The secret the teacher whispers to the bot (``!claim CODE``); the bot replaces it when
    #: it was typed in the public chat, so this is the one that works now.
    teacher_code: str = field(default="", repr=False)
    #: Unix seconds when ``start`` was called.
    started_at: float = field(default_factory=time.time)
    #: The storage meeting id (rows appear once the bot has joined).
    meeting_id: str | None = None
    #: Why the bot failed, in words; ``None`` while all is well.
    error: str | None = None
    #: Why the bot left (asked to, everyone left, ...); ``None`` while it is in the meeting.
    stop_reason: str | None = None
    num_alerts: int = 0
    #: The teacher paused the analysis from the chat.
    paused: bool = False
    #: Once it failed or left: a stable code (``bot.outcomes.BotCode``) and a sentence.
    code: str | None = None
    message: str | None = None
    #: Where its lifecycle events are POSTed (``None``: no webhook).
    webhook_url: str | None = None
    #: How its webhook deliveries went so far (``None``: no webhook).
    webhook: WebhookDeliveries | None = None


@dataclass(frozen=True, slots=True)
class WebhookDeliveries:
    """One bot's webhook events so far (or a total over bots): accepted by the receiver (2xx),
    given up on (refused, or every attempt failed), and dropped unsent (a full queue, or still
    queued when the bot's drain time ran out). Events waiting in the queue are in none."""

    delivered: int = 0
    failed: int = 0
    dropped: int = 0

    @staticmethod
    def summed(parts: Iterable[WebhookDeliveries]) -> WebhookDeliveries:
        """The total over ``parts`` (bots, or bots and the forgotten ones' totals)."""
        parts = list(parts)
        return WebhookDeliveries(
            delivered=sum(part.delivered for part in parts),
            failed=sum(part.failed for part in parts),
            dropped=sum(part.dropped for part in parts),
        )


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where to POST a bot's lifecycle events and the secret that signs them."""

    url: str
    secret: str = field(repr=False)


class BotsUnavailableError(RuntimeError):
    """This process cannot run bots (answered 503)."""


@runtime_checkable
class BotManager(Protocol):
    """What the web app asks of the bots. Implementations raise ``ValueError`` for a meeting URL,
    teacher or options they refuse (answered 400 with the message) and ``BotsUnavailableError``
    when no bot can start (503)."""

    async def start(
        self,
        meeting_url: str,
        teacher: str,
        options: dict[str, Any],
        teacher_code: str | None = None,
        webhook: Webhook | None = None,
    ) -> BotInfo:
        """Starts a bot that joins ``meeting_url`` for ``teacher``; returns at once (usually
        ``starting``): joining goes on in the background. Without ``teacher_code`` the bot
        makes one (``BotInfo.teacher_code``). With ``webhook`` its lifecycle is POSTed there
        (``bot.web.webhooks``); the API passes it only when asked for one. Raises
        ``ValueError`` for bad input (with a ``field`` attribute naming it when it can)."""
        ...

    def list(self) -> list[BotInfo]:
        """Every bot this process started and still remembers, newest first."""
        ...

    def get(self, bot_id: str) -> BotInfo | None: ...

    async def stop(self, bot_id: str) -> bool:
        """Makes the bot leave its meeting; False when no bot has this id."""
        ...

    def subscribe(self, meeting_id: str) -> AsyncIterator[dict[str, Any]]:
        """The live events of one meeting (``sample``, ``state``, ``coverage``, ``alert``,
        ``joined``, ``left``, ``opt_out``, ``gap``, ``ended``), as an async generator the caller
        closes."""
        ...

    async def aclose(self) -> None:
        """Stops every bot (the server is shutting down)."""
        ...


def live_meeting_ids(bots: BotManager) -> set[str]:
    """Meetings that have an active bot in them now."""
    return {info.meeting_id for info in bots.list() if info.meeting_id and info.state.active}


def bot_json(info: BotInfo) -> dict[str, Any]:
    """A bot as the API answers it."""
    return {
        "id": info.bot_id,
        "state": info.state.value,
        "meeting_url": info.meeting_url,
        "teacher": info.teacher,
        "teacher_code": info.teacher_code,
        "started_at": datetime.fromtimestamp(info.started_at, UTC).isoformat(),
        "meeting_id": info.meeting_id,
        "error": None if info.error is None else one_line(info.error),
        "stop_reason": None if info.stop_reason is None else one_line(info.stop_reason),
        "num_alerts": info.num_alerts,
        "paused": info.paused,
        "code": info.code,
        "message": info.message,
        "webhook_url": info.webhook_url,
        "webhook": None
        if info.webhook is None
        else {
            "delivered": info.webhook.delivered,
            "failed": info.webhook.failed,
            "dropped": info.webhook.dropped,
        },
    }


#: Longest error text the API returns; longer ones end in "…".
MAX_ERROR_CHARS = 300


def one_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` on one line: control characters (newlines included) become spaces, runs of
    spaces one, at most ``limit`` characters. An error may quote a meeting server's words, and
    an API user's log or terminal should not be steered by them."""
    cleaned = " ".join("".join(" " if not c.isprintable() else c for c in text).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


class UnavailableBotManager:
    """The manager of a server that shows history only (``classpulse serve --history-only``):
    every start is refused with 503 and says why."""

    def __init__(self, feed: LiveFeed, reason: str) -> None:
        self._feed = feed
        self.reason = reason

    async def start(
        self,
        meeting_url: str,
        teacher: str,
        options: dict[str, Any],
        teacher_code: str | None = None,
        webhook: Webhook | None = None,
    ) -> BotInfo:
        raise BotsUnavailableError(self.reason)

    def list(self) -> list[BotInfo]:
        return []

    def get(self, bot_id: str) -> BotInfo | None:
        return None

    async def stop(self, bot_id: str) -> bool:
        return False

    def subscribe(self, meeting_id: str) -> AsyncIterator[dict[str, Any]]:
        return self._feed.subscribe(meeting_id)

    async def aclose(self) -> None:
        return None
