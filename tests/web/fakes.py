"""A small ``BotManager`` for the web tests: no meeting, no video, but every row it makes goes
through the real storage writer, and every event through the real ``bot.live.LiveFeed`` in the
bot session's own shapes (``{"type": "sample", "student": ..., ...}``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from bot.live import LiveFeed
from bot.meetings.url import parse_meeting_url
from bot.teacher import new_teacher_code
from bot.web.bots import BotInfo, BotState, Webhook
from engine.types import EngagementState
from storage import (
    AlertRaised,
    MeetingClosed,
    MeetingOpened,
    ParticipantJoined,
    Sample,
    StateChanged,
    Writer,
    new_meeting_id,
)

OPTIONS = {"title", "sample_period_s"}


class FakeBotManager:
    """Bots that "join" at once; the test plays the meeting with ``push_sample``, ``push_alert``."""

    def __init__(self, writer: Writer, feed: LiveFeed) -> None:
        self.writer = writer
        self.feed = feed
        self._bots: dict[str, BotInfo] = {}
        self._people: dict[str, set[str]] = {}
        self._last_state: dict[tuple[str, str], EngagementState] = {}
        self.closed = False
        #: The webhook each start was given (the real delivery is tested with the runtime).
        self.webhooks: list[Webhook | None] = []

    async def start(
        self,
        meeting_url: str,
        teacher: str,
        options: dict[str, Any],
        teacher_code: str | None = None,
        webhook: Webhook | None = None,
    ) -> BotInfo:
        self.webhooks.append(webhook)
        url = parse_meeting_url(meeting_url)
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            raise ValueError(f"Expected options among {sorted(OPTIONS)}. Received: {unknown}")
        meeting_id = new_meeting_id()
        self.writer.submit(
            MeetingOpened(
                meeting_id=meeting_id,
                platform="janus",
                room=str(url.room),
                t=time.time(),
                teacher=teacher,
                title=options.get("title"),
                sample_period_s=float(options.get("sample_period_s", 1.0)),
            )
        )
        info = BotInfo(
            bot_id=uuid.uuid4().hex[:12],
            meeting_url=url.redacted(),
            teacher=teacher,
            teacher_code=teacher_code or new_teacher_code(),
            state=BotState.RUNNING,
            meeting_id=meeting_id,
        )
        self._bots[info.bot_id] = info
        self._people[meeting_id] = set()
        return info

    def list(self) -> list[BotInfo]:
        return sorted(self._bots.values(), key=lambda info: info.started_at, reverse=True)

    def get(self, bot_id: str) -> BotInfo | None:
        return self._bots.get(bot_id)

    async def stop(self, bot_id: str) -> bool:
        info = self._bots.get(bot_id)
        if info is None:
            return False
        if info.state.active and info.meeting_id is not None:
            self.writer.submit(MeetingClosed(meeting_id=info.meeting_id, t=time.time()))
            self._bots[bot_id] = replace(info, state=BotState.ENDED, stop_reason="asked to leave")
            self._publish(info.meeting_id, {"type": "ended", "reason": "asked to leave"})
        return True

    def subscribe(self, meeting_id: str) -> AsyncIterator[dict[str, Any]]:
        return self.feed.subscribe(meeting_id)

    async def aclose(self) -> None:
        for bot_id in list(self._bots):
            await self.stop(bot_id)
        self.closed = True

    # -- playing the meeting ----------------------------------------------------------------

    def push_sample(self, meeting_id: str, name: str, state: EngagementState, t: float) -> None:
        """One sample of ``name`` (joining first when new), and a state change when it differs."""
        if name not in self._people[meeting_id]:
            self._people[meeting_id].add(name)
            self.writer.submit(ParticipantJoined(meeting_id=meeting_id, display_name=name, t=t))
            self._publish(meeting_id, {"type": "joined", "student": name, "t": t})
        face = state is not EngagementState.NO_FACE
        p = [0.8 if s is state else 0.1 for s in list(EngagementState)[:3]] if face else None
        previous = self._last_state.get((meeting_id, name))
        if previous is not state:
            self._last_state[(meeting_id, name)] = state
            self.writer.submit(StateChanged(meeting_id, name, t, state, previous))
            self._publish(
                meeting_id, {"type": "state", "student": name, "state": state.value, "t": t}
            )
        self.writer.submit(Sample(meeting_id, name, t, state, face, *(p or (None, None, None))))
        self._publish(
            meeting_id, {"type": "sample", "student": name, "state": state.value, "t": t, "p": p}
        )

    def push_alert(
        self, meeting_id: str, t: float, kind: str, text: str, name: str | None = None
    ) -> None:
        self.writer.submit(
            AlertRaised(
                meeting_id=meeting_id, t=t, kind=kind, text=text, delivered=True, display_name=name
            )
        )
        self._publish(
            meeting_id,
            {
                "type": "alert",
                "kind": kind,
                "student": name,
                "text": text,
                "t": t,
                "delivered": True,
            },
        )

    def _publish(self, meeting_id: str, event: dict[str, Any]) -> None:
        self.feed.publish(meeting_id, {"meeting_id": meeting_id, **event})
