"""Relayed video for viewers: which classmates each browser sees, and the tracks that carry them.

Each browser receives at most a few small tiles (``RoomSettings.max_tiles_per_*``). Every tile is
a VP8 encode on the server, so a cap per viewer keeps the cost at viewers × cap instead of
viewers². The assignment is stable: a tile keeps showing the same person until they leave or
turn their camera off, and a free tile goes to the next person in priority order.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Callable, Sequence

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

logger = logging.getLogger(__name__)

VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)


def assign_tiles(
    current: Sequence[str | None], candidates: Sequence[str]
) -> tuple[str | None, ...]:
    """New slot contents: ids in ``current`` that are still ``candidates`` stay where they are;
    free slots take the first ``candidates`` (in priority order) not shown yet."""
    eligible = set(candidates)
    slots = [member if member in eligible else None for member in current]
    shown = {member for member in slots if member is not None}
    waiting = iter(member for member in candidates if member not in shown)
    for index, member in enumerate(slots):
        if member is None:
            slots[index] = next(waiting, None)
    return tuple(slots)


class TileTrack(MediaStreamTrack):
    """One receive slot of one viewer: its sender keeps this track for the whole connection.

    aiortc's sender stops for good when its track ends, so a slot never ends when the person
    shown leaves: ``show(None)`` makes it wait (sending nothing) until ``show(source)`` gives it
    someone else. Frames are thinned to ``fps`` and scaled to the tile size here, before the
    sender encodes them; ``source`` is a ``MediaRelay`` subscription (``buffered=False``), so a
    slow encoder skips frames instead of queueing them.
    """

    kind = "video"

    def __init__(
        self, *, width: int, height: int, fps: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.width = width
        self.height = height
        self.interval_s = 1.0 / fps
        self._source: MediaStreamTrack | None = None
        self._changed = asyncio.Event()
        self._next_due = 0.0
        self._clock = clock
        self._start: float | None = None
        self.num_sent = 0

    @property
    def source(self) -> MediaStreamTrack | None:
        return self._source

    def show(self, source: MediaStreamTrack | None) -> None:
        """Switch to ``source`` (``None``: show nobody). The previous source is stopped."""
        previous, self._source = self._source, source
        if previous is not None and previous is not source:
            previous.stop()
        self._changed.set()

    def stop(self) -> None:
        self.show(None)
        super().stop()

    async def recv(self) -> av.VideoFrame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            source = self._source
            if source is None:
                self._changed.clear()
                await self._changed.wait()
                continue
            frame = await self._next_from(source)
            if frame is None:
                continue
            now = self._clock()
            # Thinning to the tile rate on a drift-free schedule: a frame due within a quarter
            # interval goes out (15 fps in, 10 fps out sends 2 of every 3 frames, not 1 of 2).
            if now < self._next_due - self.interval_s / 4:
                continue
            self._next_due = max(self._next_due + self.interval_s, now - self.interval_s)
            tile = frame.reformat(width=self.width, height=self.height, format="yuv420p")
            # Our own clock: sources switch, and their RTP timestamps have unrelated origins.
            if self._start is None:
                self._start = now
            tile.pts = int((now - self._start) * VIDEO_CLOCK_RATE)
            tile.time_base = VIDEO_TIME_BASE
            self.num_sent += 1
            return tile

    async def _next_from(self, source: MediaStreamTrack) -> av.VideoFrame | None:
        """The source's next frame, or ``None`` when the source ended or was switched meanwhile.

        Never raises: aiortc's sender stops for good on any error from its track."""
        self._changed.clear()
        receiving = asyncio.ensure_future(source.recv())
        switched = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait((receiving, switched), return_when=asyncio.FIRST_COMPLETED)
        finally:
            switched.cancel()
            if not receiving.done():
                receiving.cancel()
        if not receiving.done() or receiving.cancelled():
            return None  # switched to someone else meanwhile
        error = receiving.exception()
        if error is not None:
            if not isinstance(error, MediaStreamError):
                logger.warning("tile source failed: %r", error)
            if self._source is source:
                self._source = None  # the person left; wait for the room to show someone else
                source.stop()
            return None
        frame = receiving.result()
        return frame if isinstance(frame, av.VideoFrame) and self._source is source else None
