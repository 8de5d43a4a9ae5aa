"""A stand-in for the bot's session in connector tests: reads a connector's events and keeps them.

It does what the real session will do with the protocol (and nothing Janus-specific): keeps the
frame source of each participant by display name and records every event, so tests can wait for
"Ana's frames are arriving" or "a ParticipantLeft for Lou came".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TypeVar

from bot.meetings.frames import FrameSource, ReceivedFrame
from bot.meetings.protocol import (
    MeetingConnector,
    MeetingEvent,
    Participant,
    VideoTrackAdded,
    VideoTrackRemoved,
)

E = TypeVar("E")


class BotObserver:
    def __init__(self, connector: MeetingConnector) -> None:
        self.connector = connector
        #: ``(time.monotonic(), event)`` in arrival order.
        self.events: list[tuple[float, MeetingEvent]] = []
        self.sources: dict[str, FrameSource] = {}
        self.participants_by_name: dict[str, Participant] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> BotObserver:
        self._task = asyncio.create_task(self._consume(), name="bot-observer")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def ended(self) -> bool:
        return self._task is not None and self._task.done()

    def of_type(self, kind: type[E], since: int = 0) -> list[E]:
        return [event for _, event in self.events[since:] if isinstance(event, kind)]

    async def wait_for(
        self,
        kind: type[E],
        predicate: Callable[[E], bool] = lambda e: True,
        *,
        since: int = 0,
        timeout: float = 10.0,
    ) -> E:
        """The first event of ``kind`` at index ≥ ``since`` matching ``predicate``."""
        async with asyncio.timeout(timeout):
            while True:
                for _, event in self.events[since:]:
                    if isinstance(event, kind) and predicate(event):
                        return event
                await self._wait_change()

    async def wait_for_frames(
        self, names: list[str], *, num_frames: int = 5, timeout: float = 15.0
    ) -> dict[str, ReceivedFrame]:
        """Wait until each named participant's current source has ``num_frames`` frames more than
        when this was called (a source that appears later counts from zero)."""
        baseline = {
            name: (
                self.sources.get(name),
                self.sources[name].num_received if name in self.sources else 0,
            )
            for name in names
        }
        result: dict[str, ReceivedFrame] = {}
        try:
            await self._collect_frames(names, baseline, num_frames, result, timeout)
        except TimeoutError:
            counts = {
                name: (self.sources[name].num_received if name in self.sources else None)
                for name in names
            }
            missing = sorted(set(names) - set(result))
            raise AssertionError(
                f"no {num_frames} new frames in {timeout:.1f} s from {missing}; "
                f"frames received now: {counts}; "
                f"sources: {sorted(self.sources)}"
            ) from None
        return result

    async def _collect_frames(
        self,
        names: list[str],
        baseline: dict[str, tuple[FrameSource | None, int]],
        num_frames: int,
        result: dict[str, ReceivedFrame],
        timeout: float,
    ) -> None:
        async with asyncio.timeout(timeout):
            while len(result) < len(names):
                for name in names:
                    source = self.sources.get(name)
                    if source is None or name in result:
                        continue
                    start_source, start_count = baseline[name]
                    received = source.num_received - (start_count if source is start_source else 0)
                    latest = source.latest()
                    if received >= num_frames and latest is not None:
                        result[name] = latest
                if len(result) < len(names):
                    await asyncio.sleep(0.05)

    async def _wait_change(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    async def _consume(self) -> None:
        async for event in self.connector.events():
            self.events.append((time.monotonic(), event))
            if isinstance(event, VideoTrackAdded):
                # Connectors without media workers hand out decoded frames, not analysed ones.
                assert isinstance(event.source, FrameSource), event.source
                self.sources[event.participant.display_name] = event.source
            elif isinstance(event, VideoTrackRemoved):
                source = self.sources.get(event.participant.display_name)
                if source is not None and source.closed:
                    del self.sources[event.participant.display_name]
            participant = getattr(event, "participant", None)
            if isinstance(participant, Participant):
                self.participants_by_name[participant.display_name] = participant
            self._changed.set()
        self._changed.set()
