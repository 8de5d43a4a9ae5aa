"""engine.attention: runs of looking away / closed eyes with blip tolerance, PERCLOS, summaries."""

from __future__ import annotations

import pytest

from engine.attention import AttentionSettings, AttentionWindow
from engine.types import Attention

FACING = Attention(
    yaw_deg=3.0, pitch_deg=-2.0, eye_openness=0.3, eyes_open=True, looking_away=False
)
AWAY = Attention(yaw_deg=50.0, pitch_deg=0.0, eye_openness=0.3, eyes_open=True, looking_away=True)
CLOSED = Attention(
    yaw_deg=0.0, pitch_deg=-8.0, eye_openness=0.08, eyes_open=False, looking_away=False
)


def feed(window: AttentionWindow, start: float, end: float, reading: Attention | None) -> None:
    """Readings at 5 frames a second in [start, end)."""
    for i in range(round((end - start) * 5)):
        window.push(start + i / 5, reading)


def test_looking_away_counts_from_the_first_away_frame_and_ends_after_blip_s() -> None:
    window = AttentionWindow()
    feed(window, 0, 10, FACING)
    assert window.looking_away_for(10) == 0.0
    feed(window, 10, 75, AWAY)
    assert window.looking_away_for(74.8) == pytest.approx(64.8)
    assert window.eyes_closed_for(74.8) == 0.0
    feed(window, 75, 76.2, FACING)  # 1.2 s facing the camera: longer than blip_s ends it
    assert window.looking_away_for(76.2) == 0.0
    feed(window, 76.2, 80, AWAY)  # a new run
    assert window.looking_away_for(79.8) == pytest.approx(3.6)


def test_single_frame_blips_and_missing_readings_do_not_break_a_run() -> None:
    window = AttentionWindow(AttentionSettings(blip_s=1.0))
    feed(window, 0, 20, CLOSED)
    window.push(20.0, FACING)  # one frame read open inside closed eyes
    window.push(20.2, None)  # one frame without landmarks
    feed(window, 20.4, 40, CLOSED)
    assert window.eyes_closed_for(39.8) == pytest.approx(39.8)
    # No frame at all for 0.8 s (the face lost for a moment), then closed again: still one run.
    feed(window, 40.6, 42, CLOSED)
    assert window.eyes_closed_for(41.8) == pytest.approx(41.8)


def test_no_reading_is_never_looking_away_nor_closed() -> None:
    window = AttentionWindow()
    feed(window, 0, 120, None)  # the Haar stage: faces without landmarks
    assert window.looking_away_for(120) == 0.0
    assert window.eyes_closed_for(120) == 0.0
    assert window.perclos(120) is None
    assert window.summary(119, 120) is None


def test_a_run_is_not_current_once_readings_stop() -> None:
    window = AttentionWindow()
    feed(window, 0, 30, AWAY)
    assert window.looking_away_for(30.5) == pytest.approx(29.8)
    assert window.looking_away_for(31.0) == 0.0  # 1.2 s since the last away frame


def test_perclos_is_the_share_of_closed_readings_over_the_window() -> None:
    window = AttentionWindow(AttentionSettings(perclos_window_s=60))
    feed(window, 0, 45, FACING)
    feed(window, 45, 60, CLOSED)
    assert window.perclos(59.9) == pytest.approx(0.25)
    feed(window, 60, 120, FACING)  # the closed minute slides out of the window
    assert window.perclos(119.9) == 0.0
    assert window.perclos(300) is None  # nothing in the last minute


def test_summary_is_the_majority_over_the_span_so_a_blink_keeps_the_eyes_open() -> None:
    window = AttentionWindow()
    for i, reading in enumerate([FACING, FACING, CLOSED, FACING, FACING]):
        window.push(10 + i / 5, reading)
    summary = window.summary(9.9, 10.9)
    assert summary is not None
    assert summary.eyes_open and not summary.looking_away
    assert summary.num_readings == 5
    assert summary.pitch_deg == pytest.approx((4 * -2.0 - 8.0) / 5)
    window.push(11.0, AWAY)
    window.push(11.2, FACING)
    tie = window.summary(10.9, 11.2)
    assert tie is not None and not tie.looking_away  # a tie is not "away"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"looking_away_s": -1}, "Expected looking_away_s >= 0 seconds. Received: -1"),
        ({"eyes_closed_s": float("inf")}, "Expected eyes_closed_s >= 0 seconds. Received: inf"),
        ({"perclos_window_s": 0}, "Expected perclos_window_s > 0 seconds. Received: 0"),
        ({"max_readings_per_s": 0}, "Expected max_readings_per_s >= 1. Received: 0"),
    ],
)
def test_settings_refuse_bad_values(fields: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        AttentionSettings(**fields)  # type: ignore[arg-type]
    assert str(raised.value) == message


def test_defaults_are_the_documented_thresholds() -> None:
    settings = AttentionSettings()
    assert (settings.looking_away_s, settings.eyes_closed_s, settings.perclos_window_s) == (
        60.0,
        30.0,
        60.0,
    )


def test_perclos_stays_right_when_the_memory_bound_pushes_readings_out() -> None:
    window = AttentionWindow(AttentionSettings(perclos_window_s=1, max_readings_per_s=2))
    for i in range(10):  # 10 readings a second, 2 kept: the newest two (open, closed)
        window.push(i / 10, CLOSED if i % 2 else FACING)
    assert window.perclos(0.95) == 0.5
    window.push(1.0, FACING)
    window.push(1.1, FACING)
    assert window.perclos(1.1) == 0.0
