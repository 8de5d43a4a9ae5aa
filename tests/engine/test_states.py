"""Smoothing and hysteresis on synthetic score streams."""

from __future__ import annotations

import numpy as np
import pytest

from engine.states import CalibrationSettings, StateSettings, StateTracker
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


# -- a teacher's "this student is fine" (calibration) ------------------------------------------


def steady(
    tracker: StateTracker, probs: tuple[float, float, float], start: float, seconds: float
) -> list[StateChange]:
    """Scores of one unchanging face at 5 fps; the state changes they caused."""
    changes = []
    for index in range(int(seconds * 5)):
        change = tracker.push(Scores("ana", start + index / 5, *probs))
        if change is not None:
            changes.append(change)
    return changes


def test_a_calm_face_read_as_confused_reads_calm_after_calibration() -> None:
    tracker = StateTracker()
    steady(tracker, (0.25, 0.1, 0.65), 0.0, 40.0)  # her calm face, read as confused
    assert tracker.state("ana") is EngagementState.CONFUSED
    assert tracker.calibrate("ana", 40.0)
    changes = steady(tracker, (0.25, 0.1, 0.65), 40.2, 10.0)
    assert [c.state for c in changes] == [EngagementState.INTERESTED]
    assert changes[0].t <= 42.0  # within the dwell of the next scores
    # Real confusion, far stronger than her calm face, still reads confused.
    changes = steady(tracker, (0.02, 0.03, 0.95), 50.2, 10.0)
    assert [c.state for c in changes] == [EngagementState.CONFUSED]


def test_calibration_never_makes_alerts_likelier() -> None:
    tracker = StateTracker()
    steady(tracker, (0.92, 0.04, 0.04), 0.0, 30.0)  # reads calmer than an average calm face
    assert tracker.calibrate("ana", 30.0)
    assert not tracker._persons["ana"].shift.any()  # nothing taken off, nothing added
    # A face between calm and confused scores exactly as it did before.
    steady(tracker, (0.45, 0.05, 0.5), 30.2, 10.0)
    smoothed = tracker._persons["ana"].smoothed
    assert smoothed is not None and np.allclose(smoothed, (0.45, 0.05, 0.5), atol=0.01)


def test_calibration_needs_recent_scores_and_caps_the_shift() -> None:
    tracker = StateTracker()
    assert not tracker.calibrate("ana", 10.0)  # never seen
    steady(tracker, (0.3, 0.1, 0.6), 0.0, 1.0)  # 5 scores: too few
    assert not tracker.calibrate("ana", 1.0)
    steady(tracker, (0.3, 0.1, 0.6), 1.0, 10.0)
    assert not tracker.calibrate("ana", 100.0)  # all of them older than the 30 s window
    steady(tracker, (1e-6, 1e-6, 1.0), 100.0, 10.0)  # the most confused face there can be
    assert tracker.calibrate("ana", 110.0)
    person = tracker._persons["ana"]
    assert person.shift[0] == 0.0 and person.shift[2] == pytest.approx(4.0)  # the cap


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window_s": 0.0},
        {"max_shift": -1.0},
        {"min_scores": 0},
        {"calm_log_odds": (float("nan"), 0.0)},
    ],
)
def test_calibration_settings_are_checked(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="Expected"):
        CalibrationSettings(**kwargs)  # type: ignore[arg-type]
