"""One frame that breaks a face stage must not end a student's analysis (``analyse_or_skip``)."""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import pytest

from engine.faces import SourceAnalyser
from engine.frame_faces import FrameFaces


class FlakyStream:
    """Raises on the frames it is told to, like a stage meeting a frame it was not built for."""

    def __init__(self, failures: dict[int, Exception]) -> None:
        self.failures = failures
        self.pushed = 0

    def push(self, gray: np.ndarray, t: float) -> FrameFaces:
        self.pushed += 1
        failure = self.failures.get(self.pushed)
        if failure is not None:
            raise failure
        return FrameFaces((), ())


class FlakyDetector:
    def __init__(self, stream: FlakyStream) -> None:
        self._stream = stream

    def stream(self, source_id: str) -> Any:
        return self._stream


def test_a_failing_frame_is_skipped_and_the_next_frames_are_analysed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = FlakyStream(
        {2: RuntimeError("stage bug"), 3: ValueError("Expected a frame"), 4: RuntimeError("again")}
    )
    analyser = SourceAnalyser(FlakyDetector(stream), "cam", fps=5.0)  # type: ignore[arg-type]
    gray = np.zeros((36, 64), np.uint8)
    with caplog.at_level(logging.WARNING, logger="engine.faces"):
        results = [analyser.analyse_or_skip(gray, i / 5) for i in range(6)]
    assert [r is not None for r in results] == [True, False, False, False, True, True]
    assert stream.pushed == 6 and analyser.num_failed == 2
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert len(tracebacks) == 1
    info = tracebacks[0].exc_info
    assert info is not None and "stage bug" in str(info[1])
    messages = [r.getMessage() for r in caplog.records]
    assert any("unreadable frame: Expected a frame" in m for m in messages)
    assert any("failed on 2 frames so far" in m for m in messages)


def test_analyse_itself_still_raises_for_callers_that_want_the_error() -> None:
    analyser = SourceAnalyser(FlakyDetector(FlakyStream({1: RuntimeError("x")})), "cam", 5.0)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="x"):
        analyser.analyse(np.zeros((36, 64), np.uint8), 0.0)


@pytest.mark.parametrize("stage", ["haar", "hybrid"])
def test_a_camera_that_changes_resolution_keeps_its_person(
    stage: Literal["haar", "hybrid"],
) -> None:
    """A browser under load drops from 640×360 to 320×180 and back (or an SFU switches simulcast
    layers): the same face stays person 1 and is cropped in every frame. Before, the tracked
    boxes stayed in the old pixels and the face became a second person ("Dana (2)"), while the
    first read as faceless: the Janus e2e's browser student under load."""
    import cv2

    from bot.room.faces import bundled_face_path
    from engine.faces import DetectorSettings, FaceDetector
    from tests.conftest import require
    from tests.engine.clips import Appearance, render_frame

    path = bundled_face_path()
    require(path is not None, "matplotlib's sample portrait (grace_hopper.jpg) is missing")
    portrait = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert portrait is not None, path
    analyser = SourceAnalyser(FaceDetector(DetectorSettings(stage=stage)), "cam", fps=5.0)
    face = [Appearance(portrait, 0.0, 99.0, cx=0.45, size=0.8, motion=0.0)]
    rng = np.random.default_rng(0)
    ids = []
    for index in range(30):
        t = index / 5
        frame = render_frame(640, 360, t, face, rng)
        if 2.0 <= t < 4.0:
            frame = cv2.resize(frame, (320, 180), interpolation=cv2.INTER_AREA)
        found = analyser.analyse(frame, t)
        ids.append([crop.person_id for crop in found.crops])
    assert {person for frame_ids in ids for person in frame_ids} == {"cam/1"}  # never a second
    assert all(ids[index] == ["cam/1"] for index in (10, 11, 20, 21))  # found at once each time
    if stage == "hybrid":
        assert ids == [["cam/1"]] * 30
    assert analyser.num_resized == 2
