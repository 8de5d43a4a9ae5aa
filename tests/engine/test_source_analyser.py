"""One frame that breaks a face stage must not end a student's analysis (``analyse_or_skip``)."""

from __future__ import annotations

import logging
from typing import Any

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
