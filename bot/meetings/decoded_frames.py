"""Received video decoded where its packets arrive, and handed over without a wake-up per frame.

aiortc decodes each received video in a thread of its own and hands *every* decoded frame to the
event loop (``asyncio.run_coroutine_threadsafe(queue.put(frame), loop)``): a future, a task, a
wake-up of the loop and two task steps per frame, 15 times a second per student, although the bot
looks at 5 frames a second at most; and 30 decoder threads per media worker contend for the GIL
with the loop that receives their packets.

:func:`install` replaces aiortc's decoder thread function with one that makes the receiver's
decoder queue decode on ``put`` — on the event loop, the moment a frame's last packet arrives —
and returns, so no decoder thread runs. Every frame is decoded (the codec state needs it), but
for a track whose reader registered a :class:`NewestFrame` it only overwrites that slot, which
wakes a reader only when one is waiting. Tracks without a slot, and the end-of-track marker, go
through aiortc's queue as before. Measured at 60 students (`benchmarks.class_capacity`,
decode-only subscriber, two runs each): 74–77 % of a core with decoder threads, 69 % without.

Video is decoded by FFmpeg's own VP8 and H.264 decoders on one thread each (:class:`VideoDecoder`)
instead of aiortc's libvpx VP8 decoder with a thread pool per stream: VP8 decoding is bit-exact,
so the pictures are the same, for about 20 % less CPU with 30 streams in one process (0.40 against
0.50 ms a 640×360 frame, measured for this change).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, cast

import av
from av.video.codeccontext import VideoCodecContext

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReceivedFrame:
    """One decoded frame as it arrived."""

    #: The decoded picture; ``image.to_ndarray(format="bgr24")`` gives an OpenCV array.
    image: av.VideoFrame
    #: ``time.monotonic()`` seconds when the frame came out of the decoder.
    received_at: float
    #: 1-based count of frames received by this source; gaps between two reads are frames
    #: skipped because a newer one had arrived.
    index: int

    @property
    def width(self) -> int:
        return int(self.image.width)

    @property
    def height(self) -> int:
        return int(self.image.height)


class NewestFrame:
    """The newest decoded frame of one video, written by any thread, read on the event loop.

    ``offer`` never blocks and never queues: a frame replaces the one before it. It wakes the loop
    only when :meth:`wait` is pending.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._latest: ReceivedFrame | None = None
        self._count = 0
        self._waiting = False
        self._arrived = asyncio.Event()

    @property
    def count(self) -> int:
        """Frames offered so far."""
        return self._count

    @property
    def latest(self) -> ReceivedFrame | None:
        return self._latest

    def offer(self, image: av.VideoFrame) -> None:
        """Keep ``image`` as the newest frame (from the decoder thread or the loop)."""
        with self._lock:
            self._count += 1
            self._latest = ReceivedFrame(image, time.monotonic(), self._count)
            wake, self._waiting = self._waiting, False
        if wake:
            self._call_on_loop(self._arrived.set)

    def wake(self) -> None:
        """Wake a pending :meth:`wait` without a frame (the video ended)."""
        self._call_on_loop(self._arrived.set)

    async def wait(self, newer_than: int) -> None:
        """Return once a frame with index above ``newer_than`` is here, or :meth:`wake` is called."""
        with self._lock:
            if self._latest is not None and self._latest.index > newer_than:
                return
            self._arrived.clear()
            self._waiting = True
        await self._arrived.wait()

    def _call_on_loop(self, callback: Callable[[], Any]) -> None:
        try:
            if _on_loop_thread(self._loop):
                callback()
            else:
                self._loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


#: aiortc's per-track output queue → the slot its reader registered.
_slots: weakref.WeakKeyDictionary[asyncio.Queue[Any], NewestFrame] = weakref.WeakKeyDictionary()


def register(track_queue: asyncio.Queue[Any], slot: NewestFrame) -> None:
    """Decoded frames of the track behind ``track_queue`` go to ``slot`` from now on."""
    _slots[track_queue] = slot


def unregister(track_queue: asyncio.Queue[Any], slot: NewestFrame) -> None:
    """Undo ``register`` — unless another reader has registered the same track since (a
    recycled m-line keeps its track: the new source registers before the old one is gone)."""
    if _slots.get(track_queue) is slot:
        del _slots[track_queue]


#: MIME types → FFmpeg's decoders; other media (audio) keep aiortc's own decoders.
VIDEO_DECODERS = {"video/vp8": "vp8", "video/h264": "h264"}
#: RTP video clock: packet timestamps are 1/90 000 s.
_VIDEO_TIME_BASE = Fraction(1, 90_000)


class VideoDecoder:
    """One received video's decoder: FFmpeg's ``vp8`` or ``h264`` on one thread (a pool per
    video only adds hand-offs between threads for frames this small)."""

    def __init__(self, ffmpeg_name: str) -> None:
        self.codec = cast(VideoCodecContext, av.CodecContext.create(ffmpeg_name, "r"))
        self.codec.thread_count = 1

    def decode(self, encoded_frame: Any) -> list[av.VideoFrame]:
        """An aiortc ``JitterFrame`` (``data``, ``timestamp``) → the frames it completes."""
        packet = av.Packet(encoded_frame.data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = _VIDEO_TIME_BASE
        return list(self.codec.decode(packet))


def make_decoder(codec: Any) -> Any:
    """The decoder for an ``RTCRtpCodecParameters``: :class:`VideoDecoder` for VP8 and H.264,
    aiortc's for anything else."""
    ffmpeg_name = VIDEO_DECODERS.get(codec.mimeType.lower())
    if ffmpeg_name is not None:
        return VideoDecoder(ffmpeg_name)
    from aiortc.codecs import get_decoder

    return get_decoder(codec)


class _Decoding:
    """One receiver's decoding, done on the thread that hands over its frames: the event loop.

    Stands in for the receiver's decoder queue (``put``), so a frame is decoded the moment its
    last packet arrives, without a thread per video: no queue hand-off, no wake-up of a decoder
    thread and no contention for the GIL between 30 such threads and the loop that receives
    their packets. A frame costs ~0.4 ms (640×360 VP8); the loop keeps receiving in between.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        waiting: queue.Queue[Any],
        output_q: asyncio.Queue[Any],
        decode_error: threading.Event,
    ) -> None:
        self.loop = loop
        self.waiting = waiting
        self.output_q = output_q
        self.decode_error = decode_error
        self._lock = threading.Lock()
        self._codec_name: str | None = None
        self._decoder: Any = None
        self._failures, self._decoded = 0, False
        #: Whether ``waiting`` may still hold what the receiver queued before ``put`` was swapped;
        #: nothing reaches it afterwards, so one drain empties it for good.
        self._queued = True

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """The receiver's ``put``: ``(codec, encoded_frame)``, or ``None`` when it stops."""
        with self._lock:
            self._drain()  # anything queued before this took over goes first
            self._handle(item)

    def drain(self) -> None:
        with self._lock:
            self._drain()

    def _drain(self) -> None:
        while self._queued:
            try:
                task = self.waiting.get_nowait()
            except queue.Empty:
                self._queued = False
                return
            self._handle(task)

    def _handle(self, task: Any) -> None:
        if task is None:  # the receiver stopped: tell the track, as aiortc does
            self._output(None)
            return
        codec, encoded_frame = task
        if codec.name != self._codec_name:
            self._decoder, self._codec_name = make_decoder(codec), codec.name
        try:
            frames = self._decoder.decode(encoded_frame)
        except av.FFmpegError as exc:  # keep the decoder: a reset breaks frames until a keyframe
            self._failures += 1  # a lost packet fails every frame until the next keyframe
            if not self._decoded:  # joined mid-stream: nothing decodes before the first keyframe
                logger.debug("no %s keyframe yet: %s", codec.name, exc)
            elif self._failures == 1 or self._failures % 500 == 0:
                logger.warning(
                    "failed to decode %s frame (%d so far): %s", codec.name, self._failures, exc
                )
            self.decode_error.set()  # aiortc's receiver then asks the sender for a keyframe
            return
        self._decoded = self._decoded or bool(frames)
        slot = _slots.get(self.output_q)
        for frame in frames:
            if slot is not None and isinstance(frame, av.VideoFrame):
                slot.offer(frame)
            else:
                self._output(frame)

    def _output(self, item: Any) -> None:
        if _on_loop_thread(self.loop):
            self.output_q.put_nowait(item)
        else:
            asyncio.run_coroutine_threadsafe(self.output_q.put(item), self.loop)


def decoder_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any],
    output_q: asyncio.Queue[Any],
    decode_error: threading.Event,
) -> None:
    """Replaces aiortc's decoder thread function (``aiortc.rtcrtpreceiver.decoder_worker``, same
    arguments): instead of decoding in this thread, it makes the receiver's queue decode on
    ``put`` (:class:`_Decoding`, on the event loop, with :func:`make_decoder`) and returns. Frames
    for a registered track go to its :class:`NewestFrame`, others to the track's queue. What the
    receiver queued before the switch is decoded first, on the loop."""
    decoding = _Decoding(loop, input_q, output_q, decode_error)
    input_q.put = decoding.put  # type: ignore[method-assign]
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody reads the track any more
        loop.call_soon_threadsafe(decoding.drain)


def install() -> None:
    """Use :func:`decoder_worker` for receivers started from now on (idempotent)."""
    from aiortc import rtcrtpreceiver

    if rtcrtpreceiver.decoder_worker is not decoder_worker:
        if not callable(getattr(rtcrtpreceiver, "decoder_worker", None)):
            raise RuntimeError("aiortc internals changed: rtcrtpreceiver.decoder_worker is gone")
        rtcrtpreceiver.decoder_worker = decoder_worker
