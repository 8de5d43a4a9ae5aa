"""The one frame → faces → crops → scores → states path, after the face stage.

``engine.faces.SourceAnalyser`` takes a source's frames at the analysis rate and finds its faces
(in this process, or in a bot's media worker, which sends the crops on). ``PersonStates`` is the
rest, the same for the bot and ``classpulse analyze``: each person's crop goes to a scorer (the
inference process), their scores and absences go through one ``StateTracker``, and one no-face
rule says what a person's state is at a given time. Synchronous and free of TensorFlow; the caller
decides how scores come back (the bot's scoring hub, or ``analyze`` draining its client).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from engine.inference_client import InferenceClient
from engine.states import StateSettings, StateTracker
from engine.types import EngagementState, FaceCrop, PersonAbsent, Scores, StateChange


class CropScorer(Protocol):
    """Where crops go to be scored; the scores come back to ``PersonStates.scores``."""

    def submit(self, person_id: str, t: float, crop: np.ndarray) -> None: ...

    def forget(self, person_id: str) -> None: ...


class ClientScorer:
    """An ``InferenceClient`` as a ``CropScorer``. ``block=True`` (offline): a full queue waits
    instead of dropping the crop, so every analysed frame is scored."""

    def __init__(self, client: InferenceClient, *, block: bool = False) -> None:
        self.client = client
        self.block = block

    def submit(self, person_id: str, t: float, crop: np.ndarray) -> None:
        self.client.submit(person_id, t, crop, block=self.block)

    def forget(self, person_id: str) -> None:
        self.client.forget(person_id)


class PersonStates:
    """Persons' crops and absences in, smoothed states out.

    ``scorer=None`` reads no emotions (the bot's ``attention`` mode): a person in view is
    ``present``. The no-face rule: a person whose last face is older than ``face_timeout_s``
    at ``t`` is ``no_face`` whatever the tracker last said (a crop may be lost on the way; an
    absence event may come late), and an absence event ends their state in the tracker too.
    """

    def __init__(
        self,
        scorer: CropScorer | None,
        settings: StateSettings | None = None,
        *,
        face_timeout_s: float = 2.0,
    ) -> None:
        self.scorer = scorer
        self.face_timeout_s = face_timeout_s
        self.tracker = StateTracker(settings)
        self._last_face_t: dict[str, float] = {}

    @property
    def reads_emotions(self) -> bool:
        return self.scorer is not None

    def face(self, person_id: str, crop: FaceCrop) -> None:
        """``person_id``'s face was seen in ``crop``: scored when emotions are read."""
        self._last_face_t[person_id] = crop.t
        if self.scorer is not None:
            self.scorer.submit(person_id, crop.t, crop.crop)

    def absent(self, person_id: str, t: float) -> StateChange | None:
        """``person_id``'s face is gone since the frame at ``t`` (the face stage said so)."""
        return self.tracker.absent(PersonAbsent(person_id, t, self._last_face_t.get(person_id)))

    def scores(self, scores: Scores) -> StateChange | None:
        """A scored crop came back: smoothing and hysteresis; the change when the state moved."""
        return self.tracker.push(scores)

    def calibrate(self, person_id: str, t: float) -> bool:
        """The teacher says ``person_id`` is fine as they look: their recent scores become their
        calm face (``engine.states.CalibrationSettings``); ``False`` when too few are there."""
        return self.scorer is not None and self.tracker.calibrate(person_id, t)

    def last_face_t(self, person_id: str) -> float | None:
        return self._last_face_t.get(person_id)

    def state(self, person_id: str, t: float) -> EngagementState:
        """``person_id``'s state at ``t`` seconds under the no-face rule (see the class)."""
        seen = self._last_face_t.get(person_id)
        if seen is None or t - seen > self.face_timeout_s:
            return EngagementState.NO_FACE
        if self.scorer is None:
            return EngagementState.PRESENT
        return self.tracker.state(person_id) or EngagementState.NO_FACE

    def forget(self, person_id: str) -> None:
        """The person left or opted out: their window, smoothing and last face go at once."""
        self._last_face_t.pop(person_id, None)
        self.tracker.forget(person_id)
        if self.scorer is not None:
            self.scorer.forget(person_id)
