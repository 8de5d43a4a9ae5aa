"""The live feed: what a bot publishes about its meeting, fanned out to the dashboards watching it.

The session publishes the same rows it hands the storage writer (``Sample``, ``StateChanged``,
``AlertRaised``, ...) plus ``BotStateChanged``. Publishing never waits: each subscriber has a
bounded queue, and a subscriber that falls behind loses its oldest events and is told how many
with a ``Lagged`` marker (the dashboard then reloads from storage). Call ``publish`` from the
event loop's thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from bot.web.bots import BotInfo, BotStateChanged
from storage import (
    AlertRaised,
    ConsentRecorded,
    MeetingClosed,
    MeetingOpened,
    ParticipantJoined,
    ParticipantLeft,
    Sample,
    StateChanged,
)

#: Events a subscriber can miss before it is told so with ``Lagged``.
DEFAULT_MAX_QUEUED = 1000


@dataclass(frozen=True, slots=True)
class Lagged:
    """The subscriber fell behind and ``num_dropped`` older events were dropped."""

    num_dropped: int


FeedEvent = (
    Sample
    | StateChanged
    | AlertRaised
    | ParticipantJoined
    | ParticipantLeft
    | ConsentRecorded
    | MeetingOpened
    | MeetingClosed
    | BotStateChanged
    | Lagged
)

#: The SSE event name of each event type.
EVENT_NAMES: dict[type, str] = {
    Sample: "sample",
    StateChanged: "state",
    AlertRaised: "alert",
    ParticipantJoined: "joined",
    ParticipantLeft: "left",
    ConsentRecorded: "consent",
    MeetingOpened: "opened",
    MeetingClosed: "closed",
    BotStateChanged: "bot",
    Lagged: "lagged",
}


class FeedSubscription:
    """One watcher of one meeting: ``async for event in subscription``; ends when the meeting's
    feed is ended or ``aclose()`` is called."""

    def __init__(self, feed: LiveFeed, meeting_id: str, max_queued: int) -> None:
        self.meeting_id = meeting_id
        self._feed = feed
        self._queue: deque[FeedEvent] = deque()
        self._max_queued = max_queued
        self._num_dropped = 0
        self._ended = False
        self._wakeup = asyncio.Event()

    def _put(self, event: FeedEvent) -> None:
        if self._ended:
            return
        if len(self._queue) >= self._max_queued:
            self._queue.popleft()  # the oldest goes: a dashboard wants the present
            self._num_dropped += 1
        self._queue.append(event)
        self._wakeup.set()

    def _end(self) -> None:
        self._ended = True
        self._wakeup.set()

    def __aiter__(self) -> AsyncIterator[FeedEvent]:
        return self

    async def __anext__(self) -> FeedEvent:
        while True:
            if self._num_dropped:
                lagged, self._num_dropped = Lagged(self._num_dropped), 0
                return lagged
            if self._queue:
                return self._queue.popleft()
            if self._ended:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()

    async def aclose(self) -> None:
        self._queue.clear()
        self._end()
        self._feed._remove(self)

    async def __aenter__(self) -> FeedSubscription:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()


class LiveFeed:
    """Per-meeting fan-out of live events to subscribers."""

    def __init__(self, max_queued: int = DEFAULT_MAX_QUEUED) -> None:
        if max_queued < 1:
            raise ValueError(f"Expected max_queued >= 1. Received: {max_queued!r}")
        self._max_queued = max_queued
        self._subscribers: dict[str, set[FeedSubscription]] = {}

    def subscribe(self, meeting_id: str) -> FeedSubscription:
        subscription = FeedSubscription(self, meeting_id, self._max_queued)
        self._subscribers.setdefault(meeting_id, set()).add(subscription)
        return subscription

    def publish(self, meeting_id: str, event: FeedEvent) -> int:
        """Hands ``event`` to every subscriber of ``meeting_id``; returns how many there were."""
        subscribers = self._subscribers.get(meeting_id, ())
        for subscription in subscribers:
            subscription._put(event)
        return len(subscribers)

    def end(self, meeting_id: str) -> None:
        """Ends the meeting's subscriptions once they have read what is queued (the bot left)."""
        for subscription in self._subscribers.pop(meeting_id, set()):
            subscription._end()

    def end_all(self) -> None:
        for meeting_id in list(self._subscribers):
            self.end(meeting_id)

    def num_subscribers(self, meeting_id: str) -> int:
        return len(self._subscribers.get(meeting_id, ()))

    def _remove(self, subscription: FeedSubscription) -> None:
        subscribers = self._subscribers.get(subscription.meeting_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.meeting_id]


def event_message(event: FeedEvent) -> tuple[str, dict[str, Any]]:
    """The SSE event name and JSON payload of an event (times as Unix seconds, as the rows have them)."""
    name = EVENT_NAMES.get(type(event))
    if name is None:
        raise ValueError(
            f"Expected a live-feed event among {sorted(EVENT_NAMES.values())}. Received: {event!r}"
        )
    if isinstance(event, BotStateChanged):
        return name, {"t": event.t, "bot": bot_json(event.bot)}
    return name, _plain(event)


def bot_json(info: BotInfo) -> dict[str, Any]:
    """A bot as the API answers it."""
    return {
        "id": info.bot_id,
        "state": info.state.value,
        "meeting_url": info.meeting_url,
        "teacher": info.teacher,
        "started_at": datetime.fromtimestamp(info.started_at, UTC).isoformat(),
        "meeting_id": info.meeting_id,
        "error": info.error,
        "num_participants": info.num_participants,
        "options": dict(info.options),
    }


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    return value
