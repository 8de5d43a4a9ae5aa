"""The event stream a connector hands its one consumer; chat is capped so a flood cannot starve it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from bot.meetings.protocol import ChatReceived, MeetingEvent

logger = logging.getLogger(__name__)


class _End:
    """Marks the end of the event stream."""


class EventStream:
    """The connector's events for one consumer. Chat is capped: a flood drops chat, never joins."""

    def __init__(self, max_pending_chat: int) -> None:
        self._queue: asyncio.Queue[MeetingEvent | _End] = asyncio.Queue()
        self._max_pending_chat = max_pending_chat
        self._num_pending_chat = 0
        self.num_dropped_chat = 0
        self.ended = False

    def put(self, event: MeetingEvent) -> None:
        if self.ended:
            return
        if isinstance(event, ChatReceived):
            if self._num_pending_chat >= self._max_pending_chat:
                self.num_dropped_chat += 1
                if self.num_dropped_chat in (1, 10, 100) or self.num_dropped_chat % 1000 == 0:
                    logger.warning("chat flood: %d messages dropped so far", self.num_dropped_chat)
                return
            self._num_pending_chat += 1
        self._queue.put_nowait(event)

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self._queue.put_nowait(_End())

    async def __aiter__(self) -> AsyncIterator[MeetingEvent]:
        while True:
            event = await self._queue.get()
            if isinstance(event, _End):
                return
            if isinstance(event, ChatReceived):
                self._num_pending_chat -= 1
            yield event
