"""The privacy notice: posted to everyone when the bot arrives, whispered to each later arrival.

Consent needs the notice to reach every participant, not only those present when the bot came:
whoever joins after the public notice gets it privately on arrival. After the bot lost the
meeting and came back, the public notice goes out again (people may have come in meanwhile) and
the same rule applies from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from bot.meetings.protocol import Participant
from bot.session.settings import NOTICE

logger = logging.getLogger(__name__)

#: Sends a chat line (to everyone, or to one participant); False when it could not be sent.
Say = Callable[[str, Participant | None], Awaitable[bool]]

#: Attempts to whisper a late joiner (a Janus camera may come before its chat user does).
WHISPER_ATTEMPTS = 6
#: Late-joiner whispers in flight at once; beyond it, a join flood gets the public notice only.
MAX_PENDING_WHISPERS = 64


class NoticeBoard:
    """Posts the notice; ``on_posted`` is called after each public post (stored as consent)."""

    def __init__(
        self, say: Say, on_posted: Callable[[], None], meeting: str, text: str = NOTICE
    ) -> None:
        """``text``: the notice of the bot's mode (``SessionSettings.notice``)."""
        self._say = say
        self.text = text
        self._on_posted = on_posted
        self._meeting = meeting
        self.posted = False
        self._public: asyncio.Task[None] | None = None
        self._whispers: dict[str, asyncio.Task[None]] = {}
        self.num_whispered = 0

    def post(self) -> None:
        """(Re)post the public notice in the background, retried until chat is up."""
        self.posted = False
        if self._public is not None:
            self._public.cancel()
        self._public = asyncio.create_task(self._post(), name=f"notice {self._meeting}")

    def joined(self, participant: Participant) -> None:
        """Someone arrived: after the public notice, they get it privately."""
        if not self.posted or participant.id in self._whispers:
            return
        if len(self._whispers) >= MAX_PENDING_WHISPERS:
            logger.warning("meeting %s: too many arrivals to whisper the notice", self._meeting)
            return
        task = asyncio.create_task(self._whisper(participant), name=f"notice to {participant.id}")
        self._whispers[participant.id] = task
        task.add_done_callback(lambda _: self._whispers.pop(participant.id, None))

    def left(self, participant: Participant) -> None:
        task = self._whispers.pop(participant.id, None)
        if task is not None:
            task.cancel()

    async def aclose(self) -> None:
        tasks = [*self._whispers.values(), *([self._public] if self._public else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _post(self) -> None:
        for attempt in range(20):
            if await self._say(self.text, None):
                self.posted = True
                self._on_posted()
                return
            await asyncio.sleep(min(5.0, 0.5 * (attempt + 1)))
        logger.error("could not post the privacy notice in meeting %s", self._meeting)

    async def _whisper(self, participant: Participant) -> None:
        for attempt in range(WHISPER_ATTEMPTS):
            if await self._say(self.text, participant):
                self.num_whispered += 1
                return
            await asyncio.sleep(0.5 * (attempt + 1))
        logger.info("meeting %s: the notice did not reach %s", self._meeting, participant.id)
