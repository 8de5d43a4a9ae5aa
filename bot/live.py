"""Live feed: what a session publishes for dashboards (samples, state changes, alerts).

Each subscriber has a bounded queue; a slow browser loses its oldest events, never slows the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

#: Events a subscriber may lag behind before its oldest are dropped.
MAX_QUEUED = 1000


class LiveFeed:
    """Publish/subscribe of JSON-ready dicts, per meeting id. Event-loop only (not thread-safe)."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}

    def publish(self, meeting_id: str, event: dict[str, Any]) -> None:
        for queue in self._subscribers.get(meeting_id, ()):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    async def subscribe(self, meeting_id: str) -> AsyncIterator[dict[str, Any]]:
        """``async for event in feed.subscribe(meeting_id)`` until the consumer stops."""
        queue = self.listen(meeting_id)
        try:
            while True:
                yield await queue.get()
        finally:
            self.unlisten(meeting_id, queue)

    def listen(self, meeting_id: str) -> asyncio.Queue[dict[str, Any]]:
        """A queue subscribed now (``subscribe`` only starts at its first ``anext``): for a
        consumer that must not miss what a task about to start publishes. ``unlisten`` it."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_QUEUED)
        self._subscribers.setdefault(meeting_id, set()).add(queue)
        return queue

    def unlisten(self, meeting_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        subscribers = self._subscribers.get(meeting_id)
        if subscribers is not None:
            subscribers.discard(queue)
            if not subscribers:
                del self._subscribers[meeting_id]

    def num_subscribers(self, meeting_id: str) -> int:
        return len(self._subscribers.get(meeting_id, ()))
