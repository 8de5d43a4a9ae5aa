"""FaceTracker on synthetic boxes: stable ids, several persons, loss and return."""

from __future__ import annotations

import pytest

from engine.tracking import FaceTracker, TrackerSettings, iou
from engine.types import Box


def moved(box: Box, dx: int = 0, dy: int = 0) -> Box:
    return Box(box.x + dx, box.y + dy, box.width, box.height)


LEFT = Box(100, 100, 80, 80)
RIGHT = Box(400, 110, 80, 80)


def test_iou() -> None:
    assert iou(LEFT, LEFT) == 1.0
    assert iou(LEFT, RIGHT) == 0.0
    assert iou(Box(0, 0, 10, 10), Box(5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_first_face_takes_the_waiting_person_and_keeps_its_number_while_moving() -> None:
    tracker = FaceTracker()
    update = tracker.update(0.0, [LEFT])
    assert update.visible == ((1, LEFT),)
    for step in range(1, 20):
        box = moved(LEFT, dx=4 * step, dy=-step)  # a head drifting right, 4 px per check
        update = tracker.update(step * 0.2, [box])
        assert update.visible == ((1, box),)
        assert update.lost == ()


def test_two_faces_are_two_persons_and_never_swap() -> None:
    tracker = FaceTracker()
    tracker.update(0.0, [RIGHT, LEFT])
    numbers = {box: number for number, box in tracker.visible()}
    assert sorted(numbers.values()) == [1, 2]
    for step in range(1, 30):
        left, right = moved(LEFT, dx=step % 5), moved(RIGHT, dy=-(step % 3))
        boxes = [left, right] if step % 2 else [right, left]  # detector order varies
        visible = dict(tracker.update(step * 0.2, boxes).visible)
        assert visible[numbers[LEFT]] == left
        assert visible[numbers[RIGHT]] == right


def test_duplicate_box_on_one_face_is_not_a_new_person() -> None:
    tracker = FaceTracker()
    tracker.update(0.0, [LEFT, Box(104, 104, 76, 76)])
    assert len(tracker.visible()) == 1


def test_never_seen_person_is_lost_after_lost_after_s() -> None:
    tracker = FaceTracker(TrackerSettings(lost_after_s=1.5))
    assert tracker.update(0.0, []).lost == ()
    assert tracker.tick(1.4).lost == ()
    assert tracker.tick(1.6).lost == ((1, None),)
    assert tracker.tick(5.0).lost == ()  # reported once


def test_face_that_leaves_and_returns_keeps_its_number() -> None:
    tracker = FaceTracker(TrackerSettings(lost_after_s=1.5))
    tracker.update(0.0, [LEFT])
    tracker.update(1.0, [LEFT])
    assert tracker.update(2.0, []).lost == ()
    update = tracker.update(2.6, [])
    assert update.lost == ((1, 1.0),)
    assert update.visible == ()
    # Back somewhere else in the tile: the only person this source ever had.
    assert tracker.update(9.0, [RIGHT]).visible == ((1, RIGHT),)


def test_returning_face_goes_to_the_nearest_lost_person() -> None:
    tracker = FaceTracker(TrackerSettings(lost_after_s=1.0))
    tracker.update(0.0, [LEFT, RIGHT])
    numbers = {box: number for number, box in tracker.visible()}
    lost = tracker.update(2.0, []).lost
    assert sorted(number for number, _ in lost) == [1, 2]
    assert tracker.update(3.0, [moved(RIGHT, dx=10)]).visible == (
        (numbers[RIGHT], moved(RIGHT, 10)),
    )
    # A face far from where anyone was, with someone else present: a new person.
    far = Box(250, 250, 60, 60)
    visible = dict(tracker.update(3.2, [moved(RIGHT, dx=10), far]).visible)
    assert visible[3] == far


def test_scoped_check_only_touches_its_persons_and_never_creates() -> None:
    tracker = FaceTracker(TrackerSettings(lost_after_s=1.0))
    tracker.update(0.0, [LEFT, RIGHT])
    numbers = {box: number for number, box in tracker.visible()}
    # Re-detection around LEFT only, which also returns an unknown face: ignored.
    update = tracker.update(0.5, [moved(LEFT, dx=3), Box(250, 250, 60, 60)], scope=[numbers[LEFT]])
    assert dict(update.visible) == {numbers[LEFT]: moved(LEFT, dx=3), numbers[RIGHT]: RIGHT}
    # A failed re-detection of RIGHT hides it from the visible list but keeps it active.
    update = tracker.update(0.7, [], scope=[numbers[RIGHT]])
    assert numbers[RIGHT] not in dict(update.visible)
    assert numbers[RIGHT] in dict(tracker.active())
    assert tracker.update(1.2, [], scope=[numbers[RIGHT]]).lost == ((numbers[RIGHT], 0.0),)


def test_lost_persons_are_bounded() -> None:
    tracker = FaceTracker(TrackerSettings(lost_after_s=0.5, max_lost=3, reacquire_distance=0.1))
    for step in range(20):
        # A new face each second far from the previous ones: 20 persons over time.
        tracker.update(float(step), [Box(10 + 30 * step, 10, 20, 20)])
    tracker.tick(100.0)
    assert len(tracker._tracks) <= 3


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="match_iou"):
        TrackerSettings(match_iou=1.5)
