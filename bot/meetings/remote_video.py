"""A participant's video that is decoded and analysed in a media worker process (``bot.media``).

The session sees it where it would see a ``FrameSource``: in ``VideoTrackAdded``. Instead of
frames it yields ``AnalysedFrame``s — the faces a worker found in one sampled frame — and it
starts and stops the worker's analysis (``start(label, fps)`` / ``stop()``). At most
``max_pending`` analysed frames wait; beyond that the oldest are dropped and counted (the
session reads them at once, so this only bounds memory when the parent stalls).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from bot.meetings.frames import FrameSourceClosedError
from engine.types import FaceCrop, PersonAbsent, reduce_by_fields

#: ``control(label, fps)`` starts the worker's analysis; ``control(label, None)`` stops it.
AnalysisControl = Callable[[str, float | None, str], None]
#: ``on_gap(started, ended)``, wall-clock seconds: no analysis of this video in between.
GapHandler = Callable[[float, float], None]


@dataclass(frozen=True, slots=True)
class AnalysedFrame:
    """The faces a media worker found in one sampled frame of one video."""

    __reduce__ = reduce_by_fields

    #: Wall-clock seconds (epoch) when the frame came out of the decoder.
    frame_t: float
    crops: tuple[FaceCrop, ...]
    absent: tuple[PersonAbsent, ...]
    #: Frames the worker decoded from this video so far.
    num_received: int


class RemoteVideo:
    """One consumer: ``await next()`` until ``FrameSourceClosedError``."""

    def __init__(self, name: str, control: AnalysisControl, *, max_pending: int = 8) -> None:
        self.name = name
        self._control = control
        self._pending: deque[AnalysedFrame] = deque(maxlen=max_pending)
        self._arrived = asyncio.Event()
        self._closed = False
        self._close_reason = ""
        #: ``(label, fps, face stage)`` while analysis is wanted; re-sent to a restarted worker.
        self.wanted: tuple[str, float, str] | None = None
        self.num_received = 0
        self.num_dropped = 0
        self.num_gaps = 0
        self.gap_s = 0.0
        self.on_gap: GapHandler | None = None
        self._gap_started: float | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self, label: str, fps: float, stage: str = "hybrid") -> None:
        self.wanted = (label, fps, stage)
        self._control(label, fps, stage)

    def stop(self) -> None:
        if self.wanted is not None:
            self._control(self.wanted[0], None, self.wanted[2])
            self.wanted = None
        self._pending.clear()

    def push(self, frame: AnalysedFrame) -> None:
        """A worker's result (called by the link on the event loop)."""
        if self._closed or self.wanted is None:
            return  # stopped while in flight
        self.num_received = frame.num_received
        if self._gap_started is not None:
            started, self._gap_started = self._gap_started, None
            self.num_gaps += 1
            self.gap_s += frame.frame_t - started
            if self.on_gap is not None:
                self.on_gap(started, frame.frame_t)
        if len(self._pending) == self._pending.maxlen:
            self.num_dropped += 1
        self._pending.append(frame)
        self._arrived.set()

    def interrupted(self, started: float) -> None:
        """The worker died at ``started`` (wall clock); the gap ends with the next result."""
        if self._gap_started is None:
            self._gap_started = started

    async def next(self, timeout: float | None = None) -> AnalysedFrame:
        async with asyncio.timeout(timeout):
            while not self._pending:
                if self._closed:
                    raise FrameSourceClosedError(f"video {self.name!r} ended: {self._close_reason}")
                self._arrived.clear()
                await self._arrived.wait()
            return self._pending.popleft()

    def close(self, reason: str = "closed") -> None:
        if not self._closed:
            self._closed = True
            self._close_reason = reason
            self._pending.clear()
            self._arrived.set()
