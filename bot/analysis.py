"""One participant's video → face crops for the inference process, at the analysis rate.

Two kinds, one contract (``aclose``, ``paused``, ``num_analysed``, the crop and absent handlers):

- ``ParticipantAnalysis``: the video is decoded in this process. The frame source keeps only the
  newest decoded frame; this task wakes when a sample is due, takes that frame, runs detection
  and tracking in a worker thread (OpenCV releases the GIL; the event loop stays free) and
  submits each person's crop.
- ``RemoteParticipantAnalysis``: a media worker process decodes and finds the faces
  (``bot.media``); this task only hands on the crops it sends.

Faces never leave memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor

from bot.meetings.frames import FrameSource, FrameSourceClosedError, due_frames
from bot.meetings.remote_video import AnalysedFrame, RemoteVideo
from engine.faces import FaceDetector, FrameFaces, SourceAnalyser
from engine.types import FaceCrop, PersonAbsent

logger = logging.getLogger(__name__)

#: Called with (owner, label, crop) for each visible person and (owner, label, t) when a
#: person's face is gone; ``owner`` is the participant whose video it is.
CropHandler = Callable[[str, str, FaceCrop], None]
AbsentHandler = Callable[[str, str, float], None]
#: Called with the wall-clock time of each analysed frame (for the frames-analysed figures).
FrameHandler = Callable[[float], None]


class PersonLabels:
    """Names the persons of one tile: the first face is the participant, others ``Name (2)``…

    A label is freed when its face is lost, so a student who looks away and back is still
    ``Name``, and the classmate who shares the laptop stays ``Name (2)`` while both are in view.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._labels: dict[str, str] = {}

    def label(self, person_id: str) -> str:
        found = self._labels.get(person_id)
        if found is None:
            taken = set(self._labels.values())
            number = 1
            while self._format(number) in taken:
                number += 1
            found = self._labels[person_id] = self._format(number)
        return found

    def release(self, person_id: str) -> str | None:
        return self._labels.pop(person_id, None)

    def _format(self, number: int) -> str:
        return self.name if number == 1 else f"{self.name} ({number})"


class _Analysis:
    """What both kinds share: the person labels, the handlers, the owning task."""

    def __init__(
        self,
        name: str,
        on_crop: CropHandler,
        on_absent: AbsentHandler,
        on_frame: FrameHandler | None,
    ) -> None:
        self.name = name
        self.labels = PersonLabels(name)
        self._on_crop = on_crop
        self._on_absent = on_absent
        self._on_frame = on_frame
        self._paused = False
        self.num_analysed = 0
        self.last_face_t: float | None = None
        self._task = asyncio.create_task(self._run(), name=f"analysis {name}")

    @property
    def paused(self) -> bool:
        return self._paused

    @paused.setter
    def paused(self, paused: bool) -> None:
        self._paused = paused

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    @property
    def done(self) -> bool:
        return self._task.done()

    async def _run(self) -> None:
        raise NotImplementedError

    def _deliver(
        self, t: float, crops: tuple[FaceCrop, ...], absent: tuple[PersonAbsent, ...]
    ) -> None:
        self.num_analysed += 1
        if self._on_frame is not None:
            self._on_frame(t)
        for crop in crops:
            self.last_face_t = crop.t
            self._on_crop(self.name, self.labels.label(crop.person_id), crop)
        for gone in absent:
            label = self.labels.release(gone.person_id)
            if label is not None:
                self._on_absent(self.name, label, gone.t)


class ParticipantAnalysis(_Analysis):
    """Analyses one participant's video in this process; ``aclose()`` cancels it."""

    def __init__(
        self,
        name: str,
        source: FrameSource,
        detector: FaceDetector,
        executor: Executor,
        on_crop: CropHandler,
        on_absent: AbsentHandler,
        fps: float = 5.0,
        on_frame: FrameHandler | None = None,
    ) -> None:
        self.source = source
        self._analyser = SourceAnalyser(detector, name, fps)
        self._fps = fps
        self._executor = executor
        super().__init__(name, on_crop, on_absent, on_frame)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        async for frame, t in due_frames(self.source, self._fps):
            if self.paused:
                continue
            # The gray copy (8 MB for a 4K frame) is made in the worker too, off the loop.
            found: FrameFaces | None = await loop.run_in_executor(
                self._executor, self._analyser.analyse_or_skip, frame.image, t
            )
            if found is None:  # skipped (logged without the student's name)
                continue
            if not self.paused:
                self._deliver(t, found.crops, found.absent)


class RemoteParticipantAnalysis(_Analysis):
    """Hands on what a media worker found in one participant's video; ``aclose()`` stops it."""

    def __init__(
        self,
        name: str,
        source: RemoteVideo,
        on_crop: CropHandler,
        on_absent: AbsentHandler,
        fps: float = 5.0,
        on_frame: FrameHandler | None = None,
        stage: str = "hybrid",
    ) -> None:
        """``stage``: the face stage the worker runs (``engine.faces.DetectorSettings.stage``)."""
        self.source = source
        self._fps = fps
        self._stage = stage
        super().__init__(name, on_crop, on_absent, on_frame)
        source.start(name, fps, stage)

    @property
    def paused(self) -> bool:
        return self._paused

    @paused.setter
    def paused(self, paused: bool) -> None:
        """Paused: the worker stops analysing (and spends nothing on it) until resumed."""
        if paused != self._paused and not self.source.closed:
            if paused:
                self.source.stop()
            else:
                self.source.start(self.name, self._fps, self._stage)
        self._paused = paused

    async def aclose(self) -> None:
        self.source.stop()
        await super().aclose()

    async def _run(self) -> None:
        while True:
            try:
                found: AnalysedFrame = await self.source.next()
            except FrameSourceClosedError:
                return
            if not self.paused:
                self._deliver(found.frame_t, found.crops, found.absent)
