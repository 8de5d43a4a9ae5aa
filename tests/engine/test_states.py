"""Smoothing and hysteresis on synthetic score streams."""

from __future__ import annotations

import numpy as np
import pytest

from engine.states import StateSettings, StateTracker
from engine.types import EngagementState, PersonAbsent, Scores, StateChange

INTERESTED = (0.8, 0.1, 0.1)
BORED = (0.1, 0.8, 0.1)
CONFUSED = (0.15, 0.15, 0.7)


def feed(
    tracker: StateTracker,
    probs: tuple[float, float, float],
    start: float,
    end: float,
    person: str = "p/1",
    fps: float = 5.0,
) -> list[StateChange]:
    changes = []
    for t in np.arange(start, end, 1.0 / fps):
        change = tracker.push(Scores(person, round(float(t), 3), *probs))
        if change is not None:
            changes.append(change)
    return changes


def test_first_state_after_min_scores_without_dwell() -> None:
    tracker = StateTracker(StateSettings(min_scores=3))
    changes = feed(tracker, INTERESTED, 0.0, 2.0)
    assert [(c.t, c.state) for c in changes] == [(0.4, EngagementState.INTERESTED)]
    assert changes[0].confidence == pytest.approx(0.8)


def test_change_lands_within_a_few_seconds_and_only_once() -> None:
    tracker = StateTracker()
    feed(tracker, BORED, 0.0, 10.0)
    changes = feed(tracker, CONFUSED, 10.0, 20.0)
    assert [c.state for c in changes] == [EngagementState.CONFUSED]
    assert 10.5 <= changes[0].t <= 13.0
    assert changes[0].confidence > 0.45


def test_short_excursions_and_noise_do_not_flip_the_state() -> None:
    rng = np.random.default_rng(0)
    tracker = StateTracker()
    changes = []
    for step in range(300):  # 60 s at 5 fps of a noisy, mostly interested face
        t = step / 5.0
        base = np.array(CONFUSED if 100 <= step < 103 else INTERESTED)  # a 0.6 s frown
        probs = np.clip(base + rng.normal(0, 0.12, 3), 0.01, None)
        probs /= probs.sum()
        change = tracker.push(Scores("p/1", t, *map(float, probs)))
        if change is not None:
            changes.append(change)
    assert [c.state for c in changes] == [EngagementState.INTERESTED]


def test_toss_up_within_margin_keeps_the_current_state() -> None:
    tracker = StateTracker(StateSettings(switch_margin=0.1))
    feed(tracker, (0.5, 0.45, 0.05), 0.0, 5.0)
    assert tracker.state("p/1") is EngagementState.INTERESTED
    assert feed(tracker, (0.46, 0.5, 0.04), 5.0, 30.0) == []


def test_absent_gives_no_face_once_and_ignores_late_scores() -> None:
    tracker = StateTracker()
    feed(tracker, INTERESTED, 0.0, 3.0)
    change = tracker.absent(PersonAbsent("p/1", 4.5, 3.0))
    assert change == StateChange("p/1", 4.5, EngagementState.NO_FACE, 1.0)
    assert tracker.absent(PersonAbsent("p/1", 5.0, 3.0)) is None
    # Scores of frames from before the loss, arriving late from inference, change nothing.
    assert tracker.push(Scores("p/1", 2.9, *BORED)) is None
    assert tracker.state("p/1") is EngagementState.NO_FACE
    # The face is back: a state again after min_scores, from fresh averages (no dwell).
    changes = feed(tracker, BORED, 8.0, 10.0)
    assert [(c.t, c.state) for c in changes] == [(8.4, EngagementState.BORED)]


def test_gap_restarts_the_average() -> None:
    tracker = StateTracker(StateSettings(max_gap_s=2.0, min_dwell_s=0.0))
    feed(tracker, INTERESTED, 0.0, 5.0)
    # After a 10 s gap, the first score is not blended with the old average: with min_dwell 0,
    # one strong bored score switches at once.
    change = tracker.push(Scores("p/1", 15.0, *BORED))
    assert change is not None and change.state is EngagementState.BORED


def test_persons_are_independent_and_can_be_forgotten() -> None:
    tracker = StateTracker()
    feed(tracker, INTERESTED, 0.0, 2.0, person="a/1")
    feed(tracker, BORED, 0.0, 2.0, person="b/1")
    assert tracker.states() == {"a/1": EngagementState.INTERESTED, "b/1": EngagementState.BORED}
    tracker.forget("a/1")
    assert tracker.state("a/1") is None


def test_out_of_order_scores_are_ignored() -> None:
    tracker = StateTracker()
    feed(tracker, INTERESTED, 0.0, 2.0)
    assert tracker.push(Scores("p/1", 1.0, *CONFUSED)) is None
    smoothed = tracker._persons["p/1"].smoothed
    assert smoothed is not None and smoothed[0] > 0.75


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="half_life_s"):
        StateSettings(half_life_s=0)
    with pytest.raises(ValueError, match="min_scores"):
        StateSettings(min_scores=0)
