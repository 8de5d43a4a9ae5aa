"""One participant's video → face crops for the inference process, at the analysis rate.

The frame source keeps only the newest decoded frame; this task samples it at ``fps``, runs
detection and tracking in a worker thread (OpenCV releases the GIL; the event loop stays free)
and submits each person's crop. Faces never leave memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor

from bot.meetings.frames import FrameSource, FrameSourceClosedError
from engine.faces import FaceDetector, FrameFaces, SourceAnalyser
from engine.types import FaceCrop

logger = logging.getLogger(__name__)

#: Called with (owner, label, crop) for each visible person and (owner, label, t) when a
#: person's face is gone; ``owner`` is the participant whose video it is.
CropHandler = Callable[[str, str, FaceCrop], None]
AbsentHandler = Callable[[str, str, float], None]


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


class ParticipantAnalysis:
    """Owns the task that analyses one participant's video; ``aclose()`` cancels it."""

    def __init__(
        self,
        name: str,
        source: FrameSource,
        detector: FaceDetector,
        executor: Executor,
        on_crop: CropHandler,
        on_absent: AbsentHandler,
        fps: float = 5.0,
    ) -> None:
        self.name = name
        self.source = source
        self.labels = PersonLabels(name)
        self._analyser = SourceAnalyser(detector, name, fps)
        self._executor = executor
        self._on_crop = on_crop
        self._on_absent = on_absent
        self.paused = False
        self.num_analysed = 0
        self.last_face_t: float | None = None
        self._task = asyncio.create_task(self._run(), name=f"analysis {name}")

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    @property
    def done(self) -> bool:
        return self._task.done()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                frame = await self.source.next()
            except FrameSourceClosedError:
                return
            t = time.time()
            if self.paused or not self._analyser.due(t):
                continue  # newest frame wins: frames between samples are simply not analysed
            try:
                # The gray copy (8 MB for a 4K frame) is made in the worker too, off the loop.
                found: FrameFaces = await loop.run_in_executor(
                    self._executor, self._analyser.analyse, frame.image, t
                )
            except ValueError as error:  # a frame we cannot read is skipped, not fatal
                logger.warning("skipped a frame of %s: %s", self.name, error)
                continue
            if self.paused:
                continue
            self.num_analysed += 1
            for crop in found.crops:
                self.last_face_t = t
                self._on_crop(self.name, self.labels.label(crop.person_id), crop)
            for gone in found.absent:
                label = self.labels.release(gone.person_id)
                if label is not None:
                    self._on_absent(self.name, label, gone.t)
