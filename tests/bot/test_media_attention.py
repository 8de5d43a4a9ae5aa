"""Attention across the media-worker boundary: the face stage travels in ``Analyse`` (and is
re-sent on restart through ``RemoteVideo.wanted``), and a crop's ``Attention`` travels back."""

from __future__ import annotations

import asyncio

import numpy as np

from bot.media.wire import Analyse, FacesFound, encode, read_message
from bot.meetings.remote_video import AnalysedFrame, RemoteVideo
from engine.faces import FaceDetectors
from engine.types import Attention, Box, FaceCrop, PersonAbsent

AWAY = Attention(yaw_deg=48.5, pitch_deg=-3.0, eye_openness=0.31, eyes_open=True, looking_away=True)


async def _round_trip(message: object) -> object:
    reader = asyncio.StreamReader()
    reader.feed_data(encode(message))  # type: ignore[arg-type]
    reader.feed_eof()
    return await read_message(reader)


async def test_attention_and_the_stage_cross_the_wire() -> None:
    crop = FaceCrop("p1", 12.5, Box(1, 2, 30, 30), np.full((48, 48), 7, np.uint8), AWAY)
    found = await _round_trip(FacesFound(1, 2, AnalysedFrame(12.5, (crop,), (), 9)))
    assert isinstance(found, FacesFound)
    assert found.frame.crops[0].attention == AWAY
    assert np.array_equal(found.frame.crops[0].crop, crop.crop)
    analyse = await _round_trip(Analyse(1, 2, "Ana", 5.0, "landmarks"))
    assert analyse == Analyse(1, 2, "Ana", 5.0, "landmarks")
    assert Analyse(1, 2, "Ana", 5.0).stage == "hybrid"  # what both modes ask for by default


async def test_every_field_of_an_analysed_frame_crosses_the_wire() -> None:
    """The per-frame types pickle by their fields (``engine.types.reduce_by_fields``): every
    field, in order, including the optional ones, comes back as it went."""
    seen = FaceCrop(
        "feed/1", 3.25, Box(5, 6, 70, 80), np.arange(48 * 48, dtype=np.uint8).reshape(48, 48)
    )
    gone = (PersonAbsent("feed/2", 3.25, 1.5), PersonAbsent("feed/3", 3.25, None))
    sent = FacesFound(7, 8, AnalysedFrame(1_750_000_000.5, (seen,), gone, 41))
    found = await _round_trip(sent)
    assert isinstance(found, FacesFound)
    assert (found.link_id, found.feed_id) == (7, 8)
    frame = found.frame
    assert (frame.frame_t, frame.absent, frame.num_received) == (1_750_000_000.5, gone, 41)
    (crop,) = frame.crops
    assert (crop.person_id, crop.t, crop.box, crop.attention) == ("feed/1", 3.25, seen.box, None)
    assert crop.crop.dtype == np.uint8 and np.array_equal(crop.crop, seen.crop)


def test_remote_video_asks_for_its_stage_and_keeps_it_for_a_restart() -> None:
    calls: list[tuple[str, float | None, str]] = []
    video = RemoteVideo("feed 2", lambda label, fps, stage: calls.append((label, fps, stage)))
    video.start("Ana", 5.0, "landmarks")
    assert video.wanted == ("Ana", 5.0, "landmarks")
    video.stop()
    assert calls == [("Ana", 5.0, "landmarks"), ("Ana", None, "landmarks")]


def test_a_worker_loads_one_detector_per_stage_when_first_asked() -> None:
    detectors = FaceDetectors()
    landmarks = detectors.get("landmarks")
    assert landmarks.settings.stage == "landmarks" and landmarks.landmarks is not None
    assert detectors.get("landmarks") is landmarks
    assert detectors.get("haar").landmarks is None
