"""The landmark and hybrid face stages on awkward frames (black, tiny, empty, 4K, faceless) and on
JAFFE faces with simulated head turns (``tests/bot/harness/head_turns.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.faces import DetectorSettings, FaceDetector
from engine.frame_faces import FrameFaces
from engine.landmarks import LandmarkStage
from engine.landmarks.geometry import LandmarkSettings
from tests.bot.harness.head_turns import turn_head
from tests.engine.clips import Appearance, jaffe_face, render_frame

FPS = 5.0


@pytest.fixture(scope="module", params=["hybrid", "landmarks"])
def detector(request: pytest.FixtureRequest) -> FaceDetector:
    return FaceDetector(DetectorSettings(stage=request.param))


def push_all(detector: FaceDetector, frames: list[np.ndarray]) -> list[FrameFaces]:
    stream = detector.stream("cam")
    return [stream.push(frame, index / FPS) for index, frame in enumerate(frames)]


def frames_of(appearances: list[Appearance], seconds: float, width: int, height: int, **kw):
    rng = np.random.default_rng(0)
    return [
        render_frame(width, height, index / FPS, appearances, rng, **kw)
        for index in range(round(seconds * FPS))
    ]


@pytest.mark.parametrize("stage", ["haar", "hybrid", "landmarks"])
@pytest.mark.parametrize("shape", [(0, 0), (0, 640), (360, 0)])
def test_an_empty_frame_is_refused_by_name(stage: str, shape: tuple[int, int]) -> None:
    stream = FaceDetector(DetectorSettings(stage=stage)).stream("cam")  # type: ignore[arg-type]
    with pytest.raises(ValueError) as raised:
        stream.push(np.zeros(shape, np.uint8), 0.0)
    assert str(raised.value) == (
        f"Expected a gray frame with at least one pixel. Received: shape={shape}"
    )


def test_the_landmark_stage_refuses_an_empty_frame_by_name() -> None:
    with pytest.raises(ValueError, match=r"at least one pixel. Received: shape=\(0, 5\)"):
        LandmarkStage().detect(np.zeros((0, 5), np.uint8))


@pytest.mark.parametrize(
    "shape", [(1, 1), (2, 2), (8, 8), (16, 16), (24, 40), (1, 4000), (4000, 1), (360, 640)]
)
def test_tiny_odd_and_black_frames_give_no_crop(detector: FaceDetector, shape) -> None:
    # As the Haar stage does (tests/engine/test_faces.py): frames too small for a face are
    # searched and give nothing, without an error; a black frame likewise.
    results = push_all(detector, [np.zeros(shape, np.uint8)] * 10)
    assert all(not r.crops for r in results)
    assert [a.person_id for r in results for a in r.absent] == ["cam/1"]  # "nobody", said once


def test_faceless_frames_give_no_crop(detector: FaceDetector) -> None:
    rng = np.random.default_rng(3)
    noise = [rng.integers(0, 256, (360, 640), dtype=np.uint8) for _ in range(10)]
    rendered = frames_of([], 2.0, 640, 360)  # the clips' background with camera noise
    for frames in (noise, rendered):
        assert all(not r.crops for r in push_all(detector, frames))


def test_a_face_in_a_4k_frame_is_found_and_read(detector: FaceDetector, jaffe_dir: Path) -> None:
    face = Appearance(jaffe_face(jaffe_dir, "NA", "HA"), 0.0, 2.0, cx=0.6, size=0.4)
    results = push_all(detector, frames_of([face], 2.0, 3840, 2160))
    crops = [c for r in results for c in r.crops]
    assert len(crops) >= 8
    box = crops[0].box
    assert abs(box.x + box.width / 2 - 0.6 * 3840) < 200 and box.width > 400
    assert all(c.crop.shape == (48, 48) for c in crops)
    attention = [c.attention for c in crops if c.attention is not None]
    assert attention and all(abs(a.yaw_deg) < 20 and a.eyes_open for a in attention)


def test_black_frames_between_faces_give_no_crop(detector: FaceDetector, jaffe_dir: Path) -> None:
    face = Appearance(jaffe_face(jaffe_dir, "KR", "NE"), 0.0, 9.0)
    frames = frames_of([face], 9.0, 640, 360)
    for index in range(round(2 * FPS), round(6 * FPS)):
        frames[index] = np.zeros_like(frames[index])
    results = push_all(detector, frames)
    assert all(not r.crops for r in results[round(2 * FPS) : round(6 * FPS)])
    assert any(r.crops for r in results[: round(2 * FPS)])
    assert any(r.crops for r in results[round(7 * FPS) :])


@pytest.mark.datasets
@pytest.mark.parametrize("subject", ["UY", "NM"])
def test_a_cylinder_turned_head_reads_looking_away(jaffe_dir: Path, subject: str) -> None:
    """The hybrid stage (both modes' stage) on 2 s of the frontal photo, then 3 s of it turned
    55° (``turn_head``). A fresh detection of the turned photo reads 35°-48° here, but a face the
    stage follows is read in the region its last mesh gives, where the same frames read only
    25°-37° (measured): the test's yaw limit is 20° (default 30°), frontal faces read < 10°."""
    photo = jaffe_face(jaffe_dir, subject, "NE")
    frontal = Appearance(photo, 0.0, 2.0, motion=0.01)
    turned = Appearance(turn_head(photo, 55.0), 2.0, 5.0, motion=0.01)
    settings = DetectorSettings(stage="hybrid", landmarks=LandmarkSettings(yaw_limit_deg=20.0))
    results = push_all(FaceDetector(settings), frames_of([frontal, turned], 5.0, 640, 360))
    before = [c.attention for r in results[: round(2 * FPS)] for c in r.crops]
    assert before and all(a is not None and not a.looking_away for a in before), before
    assert all(a is not None and abs(a.yaw_deg) < 10 for a in before), before
    # The mesh reads each face at least once a second (attention_interval_s): turned from 3.2 s.
    late = [c.attention for r in results[round(3.2 * FPS) :] for c in r.crops]
    assert len(late) >= 6, late
    assert all(a is not None and a.looking_away and a.yaw_deg > 20 for a in late), late


def test_a_pass_is_due_after_its_interval_with_float_slack_or_when_the_clock_goes_back() -> None:
    from engine.frame_faces import due, full_pass_interval

    assert due(None, 0.0, 8.0)  # never made
    assert not due(0.8, 1.1, 0.4)
    assert due(0.8, 1.2, 0.4)  # 1.2 - 0.8 < 0.4 in floating point: the slack keeps it due
    assert due(5.0, 4.0, 8.0)  # a clock that went back
    intervals = {"full_s": 8.0, "search_s": 1.0, "retry_s": 0.4}
    assert full_pass_interval(0, 0, **intervals) == 1.0  # nobody followed: search
    assert full_pass_interval(2, 1, **intervals) == 0.4  # a followed face is missing: retry
    assert full_pass_interval(2, 2, **intervals) == 8.0  # all in view: look for newcomers
