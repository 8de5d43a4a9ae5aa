"""After a lost frame the receiver waits for a keyframe: broken pictures are never decoded, a hole
is given up on sooner than aiortc's 512 packets, and a picture-loss request goes to the sender."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from aiortc import rtcrtpreceiver
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from bot.meetings import keyframes
from bot.meetings.keyframes import PLI_EVERY, VIDEO_CAPACITY, KeyframeJitterBuffer, is_keyframe
from tests.bot.harness.clips import encode_h264, encode_vp8, gradients

FPS = 15
PACKETS_PER_FRAME = 3


@pytest.fixture(scope="module")
def vp8(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, ...]:
    """45 frames (3 s), a keyframe each second: frames 0, 15 and 30."""
    path: Path = tmp_path_factory.mktemp("vp8") / "clip.ivf"
    return encode_vp8(gradients(45), path, fps=FPS).packets


def _rtp(frames: tuple[bytes, ...]) -> list[RtpPacket]:
    """Each frame cut into 3 RTP packets, as a sender's packetizer would (payload already
    depacketized into ``_data``, as aiortc's receiver does before its jitter buffer)."""
    packets = []
    for index, data in enumerate(frames):
        cut = [len(data) * k // PACKETS_PER_FRAME for k in range(PACKETS_PER_FRAME + 1)]
        for part in range(PACKETS_PER_FRAME):
            packet = RtpPacket(
                payload_type=96,
                sequence_number=(index * PACKETS_PER_FRAME + part) % 65536,
                timestamp=index * 6000,
                marker=int(part == PACKETS_PER_FRAME - 1),
            )
            packet._data = data[cut[part] : cut[part + 1]]  # type: ignore[attr-defined]
            packets.append(packet)
    return packets


def _feed(buffer: JitterBuffer, packets: list[RtpPacket]) -> tuple[list[int], int]:
    """Frames out (by index), and how many picture-loss requests the receiver would send."""
    out, plis = [], 0
    for packet in packets:
        pli, frame = buffer.add(packet)
        plis += pli
        if frame is not None:
            out.append(frame.timestamp // 6000)
    return out, plis


def test_keyframes_are_told_from_other_frames(vp8: tuple[bytes, ...], tmp_path: Path) -> None:
    assert [index for index, data in enumerate(vp8) if is_keyframe(data)] == [0, 15, 30]
    h264 = encode_h264(gradients(30), tmp_path / "clip.h264", fps=FPS).packets
    assert [index for index, data in enumerate(h264) if is_keyframe(data)] == [0, 15]
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, 200, np.uint8).tobytes() for _ in range(200)]
    assert sum(is_keyframe(data) for data in noise) <= 1  # a forged start code is rare, not common
    assert not is_keyframe(b"") and not is_keyframe(b"\x00\x00\x01")


def test_an_unbroken_stream_passes_whole(vp8: tuple[bytes, ...]) -> None:
    buffer = KeyframeJitterBuffer(capacity=512, is_video=True)
    out, plis = _feed(buffer, _rtp(vp8))
    # Each frame leaves when the next one's first packet arrives: all but the last.
    assert out == list(range(44)) and plis == 0 and buffer.frames_dropped == 0


def test_a_lost_packet_drops_frames_until_the_next_keyframe(vp8: tuple[bytes, ...]) -> None:
    frames = vp8 * 10  # 30 s: keyframes every 15 frames
    packets = _rtp(frames)
    lost = 3 * PACKETS_PER_FRAME + 1  # the middle of frame 3, never resent
    buffer = KeyframeJitterBuffer(capacity=512, is_video=True)
    assert buffer.capacity == VIDEO_CAPACITY  # gives up on a hole sooner than aiortc's 512
    out, plis = _feed(buffer, packets[:lost] + packets[lost + 1 :])
    # The buffer gives up on the hole when the packet VIDEO_CAPACITY after it arrives, drops
    # all it held, and resumes at the next keyframe after that: nothing stale is decoded.
    given_up = (lost + VIDEO_CAPACITY) // PACKETS_PER_FRAME
    resumed = -(-(given_up + 1) // 15) * 15
    assert out == [0, 1, 2, *range(resumed, len(frames) - 1)]
    assert buffer.frames_dropped > 0 and not buffer.awaiting_keyframe
    assert plis >= 1  # the sender was asked for a keyframe


def test_aiortc_alone_would_decode_broken_frames(vp8: tuple[bytes, ...]) -> None:
    """The behaviour replaced: aiortc's buffer hands over the frames after the hole."""
    packets = _rtp(vp8 * 20)
    lost = 3 * PACKETS_PER_FRAME + 1
    out, _ = _feed(JitterBuffer(capacity=512, is_video=True), packets[:lost] + packets[lost + 1 :])
    after_hole = [i for i in out if i > 3]
    assert after_hole and after_hole[0] % 15 != 0  # a frame predicted from the lost one


def test_a_resent_packet_loses_nothing(vp8: tuple[bytes, ...]) -> None:
    packets = _rtp(vp8)
    late = 3 * PACKETS_PER_FRAME + 1
    reordered = packets[:late] + packets[late + 1 : late + 20] + [packets[late]]
    reordered += packets[late + 20 :]
    buffer = KeyframeJitterBuffer(capacity=512, is_video=True)
    out, plis = _feed(buffer, reordered)
    assert out == list(range(44)) and plis == 0 and buffer.frames_dropped == 0


def test_joining_mid_stream_waits_for_a_keyframe_and_asks_for_one(
    vp8: tuple[bytes, ...],
) -> None:
    packets = _rtp(vp8)[5 * PACKETS_PER_FRAME :]  # joined at frame 5
    buffer = KeyframeJitterBuffer(capacity=512, is_video=True)
    out, plis = _feed(buffer, packets)
    assert out[0] == 15 and out == list(range(15, 44))
    assert buffer.frames_dropped == 10 and plis == 1  # 10 < PLI_EVERY: asked once
    assert PLI_EVERY > 10


def test_a_long_wait_asks_again(vp8: tuple[bytes, ...]) -> None:
    inter = tuple(data for data in vp8 if not is_keyframe(data))  # a sender that never obliges
    buffer = KeyframeJitterBuffer(capacity=512, is_video=True)
    out, plis = _feed(buffer, _rtp(inter * 3))
    assert out == [] and buffer.frames_dropped == len(inter) * 3 - 1
    assert plis == -(-buffer.frames_dropped // PLI_EVERY)


def test_audio_buffers_are_aiortcs() -> None:
    buffer = KeyframeJitterBuffer(capacity=16, prefetch=4)
    assert buffer.capacity == 16 and not buffer.awaiting_keyframe


def test_install_swaps_aiortcs_buffer_once() -> None:
    keyframes.install()
    keyframes.install()
    assert rtcrtpreceiver.JitterBuffer is KeyframeJitterBuffer
