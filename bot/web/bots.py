"""Bot management as the web app sees it: a ``BotManager`` protocol and the values it returns.

The real manager runs one session per meeting (``bot/session.py``); the web app only needs to
start, list, inspect and stop bots, and to follow a meeting's live events. Tests use a small
fake with the same protocol. ``default_bot_manager`` is the one place ``classpulse serve`` gets
its manager from.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from bot.settings import Settings
    from bot.web.feed import FeedSubscription, LiveFeed
    from bot.web.metrics import Metrics
    from storage import Storage


class BotState(StrEnum):
    """Where a bot is in its life: ``starting`` → ``joined`` → ``leaving`` → ``left``, or ``failed``."""

    STARTING = "starting"
    JOINED = "joined"
    LEAVING = "leaving"
    LEFT = "left"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """True while the bot is (or is about to be) in its meeting."""
        return self in (BotState.STARTING, BotState.JOINED, BotState.LEAVING)


@dataclass(frozen=True, slots=True)
class BotInfo:
    """One bot, as the API shows it."""

    bot_id: str
    #: The meeting URL without secrets (``JanusMeetingUrl.redacted()``): it is shown to anyone
    #: holding the API token and written to logs.
    meeting_url: str
    teacher: str
    state: BotState
    #: Unix seconds when ``start`` was called.
    started_at: float
    #: The storage meeting id once the bot opened the meeting (``None`` while starting).
    meeting_id: str | None = None
    #: Why the bot failed or left, in words; ``None`` while all is well.
    error: str | None = None
    num_participants: int = 0
    #: The options the bot runs with, after the manager checked them.
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BotStateChanged:
    """A live-feed event: the bot of a meeting changed state (e.g. it left)."""

    bot: BotInfo
    #: Unix seconds.
    t: float = field(default_factory=time.time)


class BotsUnavailableError(RuntimeError):
    """This process cannot run bots (answered 503)."""


@runtime_checkable
class BotManager(Protocol):
    """What the web app asks of the bots. Implementations raise ``ValueError`` for options they
    refuse (answered 400 with the message) and ``BotsUnavailableError`` when no bot can start."""

    async def start(self, meeting_url: str, teacher: str, options: dict[str, Any]) -> BotInfo:
        """Starts a bot that joins ``meeting_url`` for ``teacher``; returns at once with its state
        (usually ``starting``): joining goes on in the background."""
        ...

    def list(self) -> list[BotInfo]:
        """Every bot this process started and still remembers, newest first."""
        ...

    def get(self, bot_id: str) -> BotInfo | None: ...

    async def stop(self, bot_id: str) -> bool:
        """Makes the bot leave its meeting; False when no bot has this id."""
        ...

    def subscribe(self, meeting_id: str) -> FeedSubscription:
        """The live events of one meeting (samples, state changes, alerts, participants, the bot's
        own state); iterate it with ``async for`` and ``aclose()`` it when done."""
        ...

    async def aclose(self) -> None:
        """Stops every bot (the server is shutting down)."""
        ...


def live_meeting_ids(bots: BotManager) -> set[str]:
    """Meetings that have an active bot in them now."""
    return {info.meeting_id for info in bots.list() if info.meeting_id and info.state.active}


class UnavailableBotManager:
    """The manager of a process that serves history only: every start is refused with 503.
    Live feeds still work for meetings someone publishes into ``feed``."""

    def __init__(self, feed: LiveFeed, reason: str) -> None:
        self._feed = feed
        self.reason = reason

    async def start(self, meeting_url: str, teacher: str, options: dict[str, Any]) -> BotInfo:
        raise BotsUnavailableError(self.reason)

    def list(self) -> list[BotInfo]:
        return []

    def get(self, bot_id: str) -> BotInfo | None:
        return None

    async def stop(self, bot_id: str) -> bool:
        return False

    def subscribe(self, meeting_id: str) -> FeedSubscription:
        return self._feed.subscribe(meeting_id)

    async def aclose(self) -> None:
        return None


def default_bot_manager(
    settings: Settings, storage: Storage, feed: LiveFeed, metrics: Metrics
) -> BotManager:
    """The manager ``create_app`` uses when none is given: the bot session's when it is installed
    (``bot.session.create_bot_manager(settings, storage, feed, metrics)``), else one that refuses
    to start bots and says why."""
    # A missing session module means "history only"; a session that fails to import is a bug
    # and raises here rather than hiding behind a 503.
    if importlib.util.find_spec("bot.session") is None:
        return UnavailableBotManager(
            feed,
            "Expected the bot session (bot/session.py) to run bots. Received: it is not installed",
        )
    session_module = importlib.import_module("bot.session")
    create = getattr(session_module, "create_bot_manager", None)
    if create is None:
        return UnavailableBotManager(
            feed,
            "Expected bot.session.create_bot_manager(settings, storage, feed, metrics) to run bots. "
            "Received: bot.session without it",
        )
    manager: BotManager = create(settings, storage, feed, metrics)
    return manager
