"""One bot's lifecycle as webhook events: ``bot.joining`` at once, ``bot.in_meeting`` when the
session says it is in, ``bot.alert`` per alert, then ``bot.ended`` or ``bot.failed`` with the
stable code of ``bot.outcomes``. Reads the session's live feed (events flow one way);
the end comes from the bot's task itself, which is what finishes."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from bot.live import LiveFeed
from bot.outcomes import end_outcome
from bot.web.webhooks import WebhookSender, lifecycle_event

#: Seconds a bot's last events may take to deliver once it has stopped (a receiver that is down
#: must not hold a server's shutdown for the whole retry schedule).
DRAIN_TIMEOUT_S = 10.0

if TYPE_CHECKING:
    from bot.runtime import BotHandle


def bot_outcome(handle: BotHandle) -> tuple[str, str] | None:
    """(code, sentence) once the bot has failed or left; ``None`` while it is active."""
    if handle.outcome is not None:
        return handle.outcome.code.value, handle.outcome.message
    if handle.active or handle.session.state != "ended":
        return None
    outcome = end_outcome(handle.session.stop_reason)
    return outcome.code.value, outcome.message


class BotLifecycle:
    """Started right after the bot (before its task first runs): it listens to the feed at once,
    so nothing the session publishes is missed."""

    def __init__(self, handle: BotHandle, feed: LiveFeed, sender: WebhookSender) -> None:
        self.handle = handle
        self.feed = feed
        self.sender = sender
        self.meeting_id = handle.session.meeting_id
        self._queue = feed.listen(self.meeting_id)
        self._bot = {
            "bot_id": handle.id,
            "meeting_id": self.meeting_id,
            "meeting_url": handle.meeting_url,
        }
        self._emit("bot.joining", "joining", "The bot is joining the meeting.")
        self.task = asyncio.create_task(self._watch(), name=f"lifecycle {handle.id}")

    def _emit(self, kind: str, code: str, message: str, data: dict[str, Any] | None = None) -> None:
        self.sender.send(lifecycle_event(kind, self._bot, code, message, data))

    async def _watch(self) -> None:
        try:
            while not self.handle.task.done():
                getter = asyncio.ensure_future(self._queue.get())
                await asyncio.wait({getter, self.handle.task}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    self._on_event(getter.result())
                else:
                    getter.cancel()
            while not self._queue.empty():
                self._on_event(self._queue.get_nowait())
            outcome = bot_outcome(self.handle)
            if outcome is None:  # the task ended without a word: say it stopped
                outcome = ("internal_error", "The bot stopped unexpectedly.")
            failed = self.handle.outcome is not None
            self._emit("bot.failed" if failed else "bot.ended", *outcome)
        finally:
            self.feed.unlisten(self.meeting_id, self._queue)
            await self.sender.aclose(DRAIN_TIMEOUT_S)

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "running":
            self._emit("bot.in_meeting", "in_meeting", "The bot is in the meeting.")
        elif kind == "alert":
            data = {key: event.get(key) for key in ("kind", "student", "text", "t", "delivered")}
            self._emit("bot.alert", str(event.get("kind")), str(event.get("text")), data)

    async def aclose(self) -> None:
        """Waits for the last event's delivery (the bot has stopped by now)."""
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
