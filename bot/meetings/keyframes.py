"""After a lost frame, wait for a keyframe instead of decoding a broken picture.

aiortc's video jitter buffer holds 512 packets. When a packet is lost and not resent, the frame
it belongs to never completes: that camera freezes for 512 packets (~8 s of a 640×360 webcam),
then the buffer skips the hole and sends a PLI (picture loss) to the sender, and every frame
after the hole is decoded — a burst of ~100 frames at once, each predicted from a picture the
decoder never had, so the images are smeared until the next keyframe. On a loaded server that
is a trap: a few seconds of CPU starvation lose packets; the bursts of decoding and the faces
the smeared images hide (each missing face is searched for over the whole frame) cost more CPU,
which loses more packets. Measured with 60 students on the 2-core test machine: after a 15 s
CPU burst analysis never came back above ~3 of 5 fps.

:class:`KeyframeJitterBuffer` does what WebRTC's own receivers do: it gives up on a hole after
256 packets (every keyframe up to 1080p still fits), drops what it buffered behind the hole, and
drops every frame until a keyframe arrives — the PLI aiortc sends asks the sender for one at once
(browsers answer within a round trip). Those frames are never decoded, so analysis sees the last
good picture instead of a broken one, and recovery costs less than normal work, not more.
"""

from __future__ import annotations

from typing import Any

from aiortc.jitterbuffer import JitterBuffer, JitterFrame

#: Packets a video buffer waits on a hole (aiortc: 512). A 1080p keyframe is ~125 packets.
VIDEO_CAPACITY = 256
#: While awaiting a keyframe, a picture-loss request goes out again every this many frames.
PLI_EVERY = 30
_VP8_START_CODE = b"\x9d\x01\x2a"
_H264_KEY_NAL_TYPES = frozenset({5, 7})  # IDR slice, sequence parameter set


def is_keyframe(data: bytes) -> bool:
    """Whether an assembled VP8 or H.264 (Annex B) frame can be decoded on its own.

    VP8: the frame tag's key-frame bit is 0 and the key-frame start code follows the tag
    (RFC 6386 §9.1). H.264: the access unit holds an IDR slice or a sequence parameter set.
    """
    if len(data) >= 10 and not data[0] & 1 and data[3:6] == _VP8_START_CODE:
        return True
    start = data.find(b"\x00\x00\x01")
    while start != -1 and start + 3 < len(data):
        if data[start + 3] & 0x1F in _H264_KEY_NAL_TYPES:
            return True
        start = data.find(b"\x00\x00\x01", start + 3)
    return False


class KeyframeJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer; for video, a shorter wait on holes and no frames between a
    skipped hole and the next keyframe."""

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = False) -> None:
        super().__init__(
            min(capacity, VIDEO_CAPACITY) if is_video else capacity, prefetch, is_video
        )
        self._video = is_video
        #: True from a skipped hole until the next keyframe (and before the first one).
        self.awaiting_keyframe = is_video
        #: Frames dropped while awaiting a keyframe (never decoded).
        self.frames_dropped = 0
        self._dropped_in_wait = 0

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        pli, frame = super().add(packet)
        if not self._video:
            return pli, frame
        if pli:
            # A hole was skipped: every frame buffered after it is predicted from a picture we
            # never got, and stale besides. Drop them all (the packet just added included) and
            # wait for the keyframe the picture-loss request asks for.
            self.remove(self.capacity)
            self._origin = None
            self.awaiting_keyframe = True
            self._dropped_in_wait = 0
            return True, None
        if frame is not None and self.awaiting_keyframe:
            if is_keyframe(frame.data):
                self.awaiting_keyframe = False
                self._dropped_in_wait = 0
            else:
                self.frames_dropped += 1
                self._dropped_in_wait += 1
                # Ask for a keyframe on the first frame dropped, and again every 30 (~2 s at
                # 15 fps) in case that request or its answer was lost.
                return pli or self._dropped_in_wait % PLI_EVERY == 1, None
        return pli, frame


def install() -> None:
    """Use :class:`KeyframeJitterBuffer` for receivers created from now on (idempotent)."""
    from aiortc import rtcrtpreceiver

    if rtcrtpreceiver.JitterBuffer is not KeyframeJitterBuffer:
        if rtcrtpreceiver.JitterBuffer is not JitterBuffer:
            raise RuntimeError(
                "aiortc internals changed: rtcrtpreceiver.JitterBuffer is not aiortc's"
            )
        rtcrtpreceiver.JitterBuffer = KeyframeJitterBuffer  # type: ignore[misc]
