"""Decoded frames handed over without waking the event loop for each one.

aiortc decodes each received video in a thread of its own and hands *every* decoded frame to the
event loop (``asyncio.run_coroutine_threadsafe(queue.put(frame), loop)``): a future, a task, a
wake-up of the loop and two task steps per frame, 15 times a second per student, although the bot
looks at 5 frames a second at most. With a class of 48 that is 720 wake-ups a second of the loop
that also receives every RTP packet.

:func:`install` replaces aiortc's decoder thread function with one that decodes exactly as
aiortc's does (the codec state needs every frame) but, for a track whose reader registered a
:class:`NewestFrame`, only overwrites that slot; it wakes the loop only when a reader is waiting
(the first frame, or a reader that is ahead of the camera). Tracks without a slot, and the
end-of-track marker, go through aiortc's queue as before.

Video is decoded by FFmpeg's own VP8 and H.264 decoders on one thread each (:class:`VideoDecoder`)
instead of aiortc's libvpx VP8 decoder with a thread pool per stream: VP8 decoding is bit-exact,
so the pictures are the same, for about 20 % less CPU with 30 streams in one process (0.40 against
0.50 ms a 640×360 frame, measured for this change).
"""

from __future__ import annotations

import asyncio
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
    """One received video's decoder: FFmpeg's ``vp8`` or ``h264`` on one thread (the decoder
    thread it runs in is already one per video; a pool per video only adds hand-offs)."""

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


def decoder_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any],
    output_q: asyncio.Queue[Any],
    decode_error: threading.Event,
) -> None:
    """aiortc's decoder thread (``aiortc.rtcrtpreceiver.decoder_worker``, same arguments), with
    frames for a registered track written to its :class:`NewestFrame` instead of queued and
    video decoded by :func:`make_decoder`."""
    codec_name, decoder = None, None
    failures, decoded = 0, False
    while True:
        task = input_q.get()
        if task is None:  # the receiver stopped: tell the track, as aiortc does
            asyncio.run_coroutine_threadsafe(output_q.put(None), loop)
            break
        codec, encoded_frame = task
        if codec.name != codec_name:
            decoder, codec_name = make_decoder(codec), codec.name
        assert decoder is not None
        try:
            frames = decoder.decode(encoded_frame)
        except av.FFmpegError as exc:  # keep the decoder: a reset breaks frames until a keyframe
            failures += 1  # one lost packet fails every frame until the next keyframe: say it once
            if not decoded:  # joined mid-stream: nothing decodes before the first keyframe
                logger.debug("no %s keyframe yet: %s", codec.name, exc)
            elif failures == 1 or failures % 500 == 0:
                logger.warning(
                    "failed to decode %s frame (%d so far): %s", codec.name, failures, exc
                )
            decode_error.set()  # aiortc's receiver then asks the sender for a keyframe
            continue
        decoded = decoded or bool(frames)
        slot = _slots.get(output_q)
        for frame in frames:
            if slot is not None and isinstance(frame, av.VideoFrame):
                slot.offer(frame)
            else:
                asyncio.run_coroutine_threadsafe(output_q.put(frame), loop)


def install() -> None:
    """Use :func:`decoder_worker` for receivers started from now on (idempotent)."""
    from aiortc import rtcrtpreceiver

    if rtcrtpreceiver.decoder_worker is not decoder_worker:
        if not callable(getattr(rtcrtpreceiver, "decoder_worker", None)):
            raise RuntimeError("aiortc internals changed: rtcrtpreceiver.decoder_worker is gone")
        rtcrtpreceiver.decoder_worker = decoder_worker
