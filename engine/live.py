"""Live analysis core: frames of many video sources in, state changes out (bot and benchmark).

Synchronous on purpose (style: pure core, thin async shell). The bot calls ``push_frame`` off
the event loop (``loop.run_in_executor``; OpenCV releases the GIL), at most one call per source
at a time, and ``poll`` from the event loop every ~0.2 s: ``poll`` drains the client's scores
itself, so do not also iterate ``client.results()``. Never imports TensorFlow.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from engine.faces import FaceDetector, SourceAnalyser
from engine.inference_client import InferenceClient
from engine.states import StateSettings, StateTracker
from engine.types import PersonAbsent, Scores, StateChange


class _Source:
    __slots__ = ("analyser", "lock", "persons")

    def __init__(self, analyser: SourceAnalyser) -> None:
        self.analyser = analyser
        self.persons: set[str] = set()
        self.lock = threading.Lock()


class LivePipeline:
    """Samples each source at ``fps``, finds faces, feeds the inference client, smooths states.

    ``push_frame`` may run concurrently for different sources; ``poll`` and ``remove_source``
    belong to one thread (the event loop).
    """

    def __init__(
        self,
        detector: FaceDetector,
        client: InferenceClient,
        *,
        fps: float = 5.0,
        states: StateSettings | None = None,
    ) -> None:
        self.detector = detector
        self.client = client
        self.fps = fps
        self.states = StateTracker(states)
        self._sources: dict[str, _Source] = {}
        self._sources_lock = threading.Lock()
        self._absences: deque[PersonAbsent] = deque()

    def _source(self, source_id: str) -> _Source:
        with self._sources_lock:
            source = self._sources.get(source_id)
            if source is None:
                source = _Source(SourceAnalyser(self.detector, source_id, self.fps))
                self._sources[source_id] = source
            return source

    def push_frame(self, source_id: str, frame: Any, t: float) -> bool:
        """Offer one decoded frame (``av.VideoFrame`` or uint8 gray array) of ``source_id`` taken
        at ``t`` seconds; returns whether it was analysed (due at the analysis rate)."""
        source = self._source(source_id)
        with source.lock:
            if not source.analyser.due(t):
                return False
            found = source.analyser.analyse(frame, t)
            for crop in found.crops:
                source.persons.add(crop.person_id)
                self.client.submit(crop.person_id, crop.t, crop.crop)
            for event in found.absent:
                source.persons.add(event.person_id)
                self._absences.append(event)
        return True

    def poll(self) -> tuple[list[StateChange], list[Scores]]:
        """State changes since the last poll, and the scores they came from."""
        changes = []
        while self._absences:
            change = self.states.absent(self._absences.popleft())
            if change is not None:
                changes.append(change)
        scores = self.client.get_scores(0.0)
        for score in scores:
            change = self.states.push(score)
            if change is not None:
                changes.append(change)
        return changes, scores

    def remove_source(self, source_id: str) -> None:
        """The participant left: forget their persons here and in the inference process."""
        with self._sources_lock:
            source = self._sources.pop(source_id, None)
        if source is None:
            return
        for person_id in source.persons:
            self.states.forget(person_id)
            self.client.forget(person_id)

    @property
    def num_sources(self) -> int:
        return len(self._sources)
