"""One bot's lifecycle as webhook events: ``bot.joining`` at once, ``bot.in_meeting`` when the
session says it is in, ``bot.alert`` per alert, then ``bot.ended`` or ``bot.failed`` with the
stable code of ``bot.outcomes``. Reads the session's live feed (events flow one way);
the end comes from the bot's task itself, which is what finishes.

Wherever the bot runs: a ``LifecycleBot`` is what the lifecycle reads of it — ``RuntimeBot`` for
a bot of this process's runtime, ``bot.launch.remote_bot.RemoteBot`` for a Ray actor (whose
events the server relays into its feed). A bot that was restarted elsewhere and rejoined (a
``gap`` event with ``reason: restart``) is announced as ``bot.in_meeting`` again, with the code
``restarted`` and the gap in ``data``."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Protocol

from bot.live import LiveFeed
from bot.outcomes import end_outcome
from bot.web.webhooks import WebhookSender, lifecycle_event

#: Seconds a bot's last events may take to deliver once it has stopped (a receiver that is down
#: must not hold a server's shutdown for the whole retry schedule).
DRAIN_TIMEOUT_S = 10.0

if TYPE_CHECKING:
    from bot.runtime import BotHandle


#: ``bot.in_meeting``'s code when the bot's worker died, was restarted and rejoined.
RESTARTED = "restarted"


class LifecycleBot(Protocol):
    """What a lifecycle reads of a bot."""

    @property
    def id(self) -> str: ...

    @property
    def meeting_id(self) -> str: ...

    @property
    def meeting_url(self) -> str:
        """Without secrets (``meeting_key``)."""
        ...

    @property
    def task(self) -> asyncio.Future[Any]:
        """Done once the bot is finished and its last live event published."""
        ...

    def final_outcome(self) -> tuple[bool, str, str] | None:
        """(failed, code, sentence) once finished; ``None`` while active or when unknown."""
        ...


class RuntimeBot:
    """A bot of this process's runtime as a ``LifecycleBot``."""

    def __init__(self, handle: BotHandle) -> None:
        self.handle = handle

    @property
    def id(self) -> str:
        return self.handle.id

    @property
    def meeting_id(self) -> str:
        return self.handle.session.meeting_id

    @property
    def meeting_url(self) -> str:
        return self.handle.meeting_url

    @property
    def task(self) -> asyncio.Future[Any]:
        return self.handle.task

    def final_outcome(self) -> tuple[bool, str, str] | None:
        outcome = bot_outcome(self.handle)
        return None if outcome is None else (self.handle.outcome is not None, *outcome)


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
    so nothing the session publishes is missed. ``adopted``: a bot that a previous server
    started (``bot.joining`` was sent then; ``in_meeting``: so was ``bot.in_meeting``)."""

    def __init__(
        self,
        bot: LifecycleBot,
        feed: LiveFeed,
        sender: WebhookSender,
        *,
        adopted: bool = False,
        in_meeting: bool = False,
    ) -> None:
        self.bot = bot
        self.feed = feed
        self.sender = sender
        self.meeting_id = bot.meeting_id
        self._queue = feed.listen(self.meeting_id)
        self._bot = {
            "bot_id": bot.id,
            "meeting_id": self.meeting_id,
            "meeting_url": bot.meeting_url,
        }
        self._in_meeting = in_meeting
        if not adopted:
            self._emit("bot.joining", "joining", "The bot is joining the meeting.")
        self.task = asyncio.create_task(self._watch(), name=f"lifecycle {bot.id}")

    def _emit(self, kind: str, code: str, message: str, data: dict[str, Any] | None = None) -> None:
        self.sender.send(lifecycle_event(kind, self._bot, code, message, data))

    async def _watch(self) -> None:
        try:
            while not self.bot.task.done():
                getter = asyncio.ensure_future(self._queue.get())
                await asyncio.wait({getter, self.bot.task}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    self._on_event(getter.result())
                else:
                    getter.cancel()
            while not self._queue.empty():
                self._on_event(self._queue.get_nowait())
            outcome = self.bot.final_outcome()
            if outcome is None:  # the task ended without a word: say it stopped
                outcome = (True, "internal_error", "The bot stopped unexpectedly.")
            failed, code, message = outcome
            self._emit("bot.failed" if failed else "bot.ended", code, message)
        finally:
            self.feed.unlisten(self.meeting_id, self._queue)
            await self.sender.aclose(DRAIN_TIMEOUT_S)

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "running" and not self._in_meeting:  # a restarted bot says so with its gap
            self._in_meeting = True
            self._emit("bot.in_meeting", "in_meeting", "The bot is in the meeting.")
        elif kind == "gap" and event.get("reason") == "restart":
            self._in_meeting = True
            gap_s = float(event.get("gap_s") or 0.0)
            self._emit(
                "bot.in_meeting",
                RESTARTED,
                f"The bot's worker was restarted and the bot is back in the meeting; nothing "
                f"was analysed for {gap_s:.0f} s.",
                {"gap_s": gap_s, "t": event.get("t")},
            )
        elif kind == "alert":
            data = {key: event.get(key) for key in ("kind", "student", "text", "t", "delivered")}
            self._emit("bot.alert", str(event.get("kind")), str(event.get("text")), data)

    async def aclose(self) -> None:
        """Waits for the last event's delivery (the bot has stopped by now)."""
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
