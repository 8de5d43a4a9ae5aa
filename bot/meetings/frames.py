"""Per-participant frame sources: drain a received video track, keep only the newest frame.

aiortc decodes every received frame into an unbounded queue behind ``track.recv()``; a consumer
that samples a few frames a second would let that queue grow without end. A ``FrameSource`` owns
one task that keeps reading the track, so the queue stays empty, and holds only the newest decoded
frame: a slow consumer falls behind by skipping frames, never by growing memory. For aiortc's own
tracks the decoder thread writes that frame directly (``decoded_frames``), so a frame nobody reads
never wakes the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bot.meetings.decoded_frames import NewestFrame, ReceivedFrame, register, unregister

__all__ = ["FrameSource", "FrameSourceClosedError", "ReceivedFrame", "due_frames"]

logger = logging.getLogger(__name__)


class FrameSourceClosedError(Exception):
    """The video ended (participant left, video removed, connection lost, bot left)."""


class FrameSource:
    """The newest frame of one participant's video. One consumer: ``await next()`` or ``async for``.

    Created and closed by the connector; consumers never close the track underneath it.
    """

    def __init__(self, track: MediaStreamTrack, *, name: str = "") -> None:
        self.name = name
        self._track = track
        self._newest = NewestFrame(asyncio.get_running_loop())
        self._returned_index = 0
        self._num_returned = 0
        self._closed = False
        self._close_reason = ""
        # aiortc's remote tracks: the decoder thread writes the newest frame itself.
        queue = getattr(track, "_queue", None)
        self._track_queue: asyncio.Queue[object] | None = (
            queue if isinstance(queue, asyncio.Queue) else None
        )
        if self._track_queue is not None:
            register(self._track_queue, self._newest)
        self._task = asyncio.get_running_loop().create_task(
            self._drain(), name=f"frame-source {name}"
        )

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def num_received(self) -> int:
        """Frames decoded for this source so far."""
        return self._newest.count

    @property
    def num_skipped(self) -> int:
        """Frames received but never handed out by ``next()`` (the consumer was slower)."""
        return max(0, self._newest.count - self._num_returned)

    def latest(self) -> ReceivedFrame | None:
        """The newest frame, without waiting (``None`` before the first one)."""
        return self._newest.latest

    async def next(self, timeout: float | None = None) -> ReceivedFrame:
        """The newest frame not returned before; waits for one to arrive.

        Raises ``FrameSourceClosedError`` once the video has ended, ``TimeoutError`` after
        ``timeout`` seconds without a new frame."""
        async with asyncio.timeout(timeout):
            while True:
                latest = self._newest.latest
                if latest is not None and latest.index > self._returned_index:
                    self._num_returned += 1
                    self._returned_index = latest.index
                    return latest
                if self._closed:
                    raise FrameSourceClosedError(f"video {self.name!r} ended: {self._close_reason}")
                await self._newest.wait(self._returned_index)

    async def __aiter__(self) -> AsyncIterator[ReceivedFrame]:
        while True:
            try:
                yield await self.next()
            except FrameSourceClosedError:
                return

    def close(self, reason: str = "closed") -> None:
        """End the stream now (waiting consumers get ``FrameSourceClosedError``) and cancel the
        drain task. Idempotent; does not stop the underlying track."""
        self._finish(reason)
        if not self._task.done():
            self._task.cancel()

    async def aclose(self, reason: str = "closed") -> None:
        """``close()`` and wait for the drain task to be gone."""
        self.close(reason)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def _finish(self, reason: str) -> None:
        if not self._closed:
            self._closed = True
            self._close_reason = reason
            if self._track_queue is not None:
                unregister(self._track_queue, self._newest)
            self._newest.wake()

    async def _drain(self) -> None:
        try:
            while True:
                frame = await self._track.recv()
                if isinstance(frame, av.VideoFrame):  # frames decoded before ``register``
                    self._newest.offer(frame)
        except MediaStreamError:
            self._finish("track ended")
        except asyncio.CancelledError:
            self._finish("closed")
            raise
        except Exception:  # a decoder or track bug must end this video, not the bot
            logger.exception("frame source %r failed", self.name)
            self._finish("failed")


async def due_frames(source: FrameSource, fps: float) -> AsyncIterator[tuple[ReceivedFrame, float]]:
    """``(frame, t)`` once per sample period until the source closes; ``t`` is the wall-clock
    time the frame was decoded.

    Wakes only when a sample is due, then takes the newest frame: frames in between are never
    looked at, whatever the camera's rate. A consumer that falls behind skips samples; nothing
    queues.
    """
    period = 1.0 / fps
    due = time.monotonic()
    while True:
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            frame = await source.next()
        except FrameSourceClosedError:
            return
        now = time.monotonic()
        due = due + period if due + period > now else now + period
        yield frame, time.time() - (now - frame.received_at)
