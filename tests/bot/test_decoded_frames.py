"""The decoder hand-off: aiortc's decoder thread writes the newest frame of a registered track
without waking the event loop, and readers still get every frame they wait for."""

from __future__ import annotations

import asyncio
import queue
import threading
from pathlib import Path
from typing import Any

import av
import pytest
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import RemoteStreamTrack

from bot.meetings import decoded_frames
from bot.meetings.decoded_frames import (
    NewestFrame,
    VideoDecoder,
    decoder_worker,
    make_decoder,
    register,
)
from bot.meetings.frames import FrameSource, FrameSourceClosedError
from tests.bot.harness.clips import encode_h264, encode_vp8, gradients

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
NUM_FRAMES = 30
DECODER = "video-decoder"


@pytest.fixture(scope="module")
def packets(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, ...]:
    path: Path = tmp_path_factory.mktemp("clip") / "clip.ivf"
    return encode_vp8(gradients(NUM_FRAMES), path, fps=15).packets


async def _decode_in_thread(
    packets: tuple[bytes, ...], output_q: asyncio.Queue[Any], error: threading.Event | None = None
) -> None:
    """Run the decoder thread over ``packets`` and the stop marker, as aiortc's receiver does."""
    input_q: queue.Queue[Any] = queue.Queue()
    for index, data in enumerate(packets):
        input_q.put((VP8, JitterFrame(data, index * 6000)))
    input_q.put(None)
    loop = asyncio.get_running_loop()
    thread = threading.Thread(
        target=decoder_worker,
        args=(loop, input_q, output_q, error or threading.Event()),
        name=DECODER,
    )
    thread.start()
    await asyncio.to_thread(thread.join)
    await asyncio.sleep(0.05)  # let the end-of-track marker land in the queue


async def test_a_registered_track_gets_only_the_newest_frame_and_no_wake_ups(
    packets: tuple[bytes, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    calls = []
    original = loop.call_soon_threadsafe

    def counting(callback: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == DECODER:
            calls.append(callback)
        return original(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    output_q: asyncio.Queue[Any] = asyncio.Queue()
    slot = NewestFrame(loop)
    register(output_q, slot)
    await _decode_in_thread(packets, output_q)

    assert slot.count == NUM_FRAMES
    latest = slot.latest
    assert latest is not None and latest.index == NUM_FRAMES
    assert (latest.width, latest.height) == (128, 72)
    assert output_q.qsize() == 1 and output_q.get_nowait() is None  # only the end marker
    # aiortc would have woken the loop once per frame; nobody was waiting, so only the end
    # marker did.
    assert len(calls) == 1


async def test_an_unregistered_track_gets_every_frame_through_aiortcs_queue(
    packets: tuple[bytes, ...],
) -> None:
    output_q: asyncio.Queue[Any] = asyncio.Queue()
    await _decode_in_thread(packets, output_q)
    items = [output_q.get_nowait() for _ in range(output_q.qsize())]
    assert len(items) == NUM_FRAMES + 1 and items[-1] is None
    assert all(item.width == 128 for item in items[:-1])


async def test_a_waiting_reader_is_woken_by_a_frame_from_another_thread(
    packets: tuple[bytes, ...],
) -> None:
    loop = asyncio.get_running_loop()
    slot = NewestFrame(loop)
    waiter = asyncio.create_task(slot.wait(newer_than=0))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    output_q: asyncio.Queue[Any] = asyncio.Queue()
    register(output_q, slot)
    await _decode_in_thread(packets[:3], output_q)
    await asyncio.wait_for(waiter, 2)
    # Already newer than what the reader has: no waiting at all.
    await asyncio.wait_for(slot.wait(newer_than=2), 0.1)


async def test_frame_source_reads_what_the_decoder_thread_wrote(packets: tuple[bytes, ...]) -> None:
    track = RemoteStreamTrack(kind="video")
    source = FrameSource(track, name="decoded")
    await _decode_in_thread(packets, track._queue)
    newest = await source.next(timeout=2)
    assert newest.index == NUM_FRAMES and source.num_received == NUM_FRAMES
    assert source.num_skipped == NUM_FRAMES - 1
    with pytest.raises(FrameSourceClosedError, match="track ended"):
        await source.next(timeout=2)  # the end marker still ends the source


def test_install_replaces_aiortcs_decoder_thread_function() -> None:
    from aiortc import rtcrtpreceiver

    decoded_frames.install()
    decoded_frames.install()  # idempotent
    assert rtcrtpreceiver.decoder_worker is decoder_worker


async def test_lost_packets_ask_for_a_keyframe_and_are_logged_once(
    packets: tuple[bytes, ...], caplog: pytest.LogCaptureFixture
) -> None:
    """A frame whose packets were lost fails to decode, and so does every frame after it until
    the next keyframe: the receiver is told (it sends a PLI), the log hears it once."""
    output_q: asyncio.Queue[Any] = asyncio.Queue()
    slot = NewestFrame(asyncio.get_running_loop())
    register(output_q, slot)
    error = threading.Event()
    damaged = tuple(data[:1] for data in packets[1:6])  # inter frames cut to their first byte
    with caplog.at_level("WARNING", logger="bot.meetings.decoded_frames"):
        await _decode_in_thread((packets[0], *damaged, *packets[6:]), output_q, error)
    assert error.is_set()
    assert 0 < slot.count < NUM_FRAMES  # the keyframe decoded; damaged frames never arrive
    warnings = [r for r in caplog.records if "failed to decode" in r.getMessage()]
    assert len(warnings) == 1


async def test_joining_mid_stream_is_not_a_warning(
    packets: tuple[bytes, ...], caplog: pytest.LogCaptureFixture
) -> None:
    """A subscriber that joins between keyframes cannot decode until the next one: expected."""
    output_q: asyncio.Queue[Any] = asyncio.Queue()
    slot = NewestFrame(asyncio.get_running_loop())
    register(output_q, slot)
    error = threading.Event()
    with caplog.at_level("WARNING", logger="bot.meetings.decoded_frames"):
        await _decode_in_thread(tuple(data[:1] for data in packets[1:6]), output_q, error)
    assert error.is_set() and slot.count == 0  # a keyframe is asked for
    assert not [r for r in caplog.records if "failed to decode" in r.getMessage()]


async def test_a_new_reader_of_the_same_track_keeps_its_registration(
    packets: tuple[bytes, ...],
) -> None:
    """Janus recycles an m-line with its track: the new source must not lose the frames when
    the old one closes after it registered."""
    track = RemoteStreamTrack(kind="video")
    old = FrameSource(track, name="old")
    new = FrameSource(track, name="new")
    await old.aclose()
    assert decoded_frames._slots.get(track._queue) is new._newest  # still written directly
    await _decode_in_thread(packets[:5], track._queue)
    assert new.num_received == 5 and old.num_received == 0
    await new.aclose()


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_ffmpegs_decoders_give_the_same_pictures_as_aiortcs(codec: str, tmp_path: Path) -> None:
    """The decoder thread's one-thread FFmpeg decoders are a drop-in for aiortc's: every frame's
    Y, U and V planes are identical (VP8 and H.264 decoding is bit-exact)."""
    from aiortc.codecs import get_decoder

    if codec == "vp8":
        parameters, clip = VP8, encode_vp8(gradients(NUM_FRAMES), tmp_path / "c.ivf", fps=15)
    else:
        parameters = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)
        clip = encode_h264(gradients(NUM_FRAMES), tmp_path / "c.h264", fps=15)
    ours, theirs = make_decoder(parameters), get_decoder(parameters)
    assert isinstance(ours, VideoDecoder) and ours.codec.thread_count == 1
    num_compared = 0
    for index, data in enumerate(clip.packets):
        frame = JitterFrame(data, index * 6000)
        for mine, reference in zip(ours.decode(frame), theirs.decode(frame), strict=True):
            assert isinstance(reference, av.VideoFrame)
            assert (mine.width, mine.height, mine.format.name) == (128, 72, "yuv420p")
            assert mine.pts == reference.pts
            # yuv420p → one (H × 3/2, W) array: the Y plane, then U and V
            assert mine.to_ndarray().tobytes() == reference.to_ndarray().tobytes()
            num_compared += 1
    assert num_compared >= NUM_FRAMES - 2  # H.264 may hold the last frames back (no flush)


def test_other_media_keep_aiortcs_decoders() -> None:
    opus = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, payloadType=111)
    assert not isinstance(make_decoder(opus), VideoDecoder)


async def test_the_receivers_put_decodes_on_the_loop_without_a_thread(
    packets: tuple[bytes, ...],
) -> None:
    """After the decoder thread function has switched the receiver's queue, each ``put`` from
    the event loop (where aiortc's receiver calls it) decodes there and then; what was queued
    before the switch is decoded first; ``None`` ends the track at once."""
    loop = asyncio.get_running_loop()
    input_q: queue.Queue[Any] = queue.Queue()
    output_q: asyncio.Queue[Any] = asyncio.Queue()
    slot = NewestFrame(loop)
    register(output_q, slot)
    input_q.put((VP8, JitterFrame(packets[0], 0)))  # queued before the switch
    threads_before = threading.active_count()
    decoder_worker(loop, input_q, output_q, threading.Event())  # returns at once
    assert threading.active_count() == threads_before
    input_q.put((VP8, JitterFrame(packets[1], 6000)))
    assert slot.count == 2 and input_q.empty()  # both decoded, the queued one first
    latest = slot.latest
    assert latest is not None and latest.index == 2 and latest.image.pts == 6000
    input_q.put(None)
    assert output_q.get_nowait() is None
    await asyncio.sleep(0)  # the scheduled drain finds nothing left
    assert slot.count == 2
