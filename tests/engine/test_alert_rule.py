"""The alert-rule simulation's bookkeeping, on made-up state timelines (no model needed)."""

from __future__ import annotations

from engine.sustained import SustainedRule
from engine.training.alert_rule import StudentClip, alert_table, tick_alerts
from engine.types import EngagementState as S

PHASES = (("interested", 0.0, 120.0), ("confused", 120.0, 180.0), ("interested", 180.0, 240.0))


def clip(states: list[tuple[float, S]]) -> StudentClip:
    return StudentClip("someone", PHASES, tuple(states))


def flickering_confusion() -> StudentClip:
    """Read right in the confused phase except 3 s of every 10."""
    states = [(0.0, S.INTERESTED)]
    for start in range(120, 180, 10):
        states += [(float(start), S.CONFUSED), (start + 7.0, S.INTERESTED)]
    return clip(states)


def test_strict_rule_misses_flickering_confusion_a_share_finds_it() -> None:
    assert tick_alerts(flickering_confusion(), SustainedRule(20.0)) == []
    assert tick_alerts(flickering_confusion(), SustainedRule(20.0, 0.6)) == [
        (135.0, S.CONFUSED)
    ]  # 7 + 5 s


def test_cooldown_allows_one_alert_per_kind_and_false_alerts_are_counted() -> None:
    # a false confusion in the attentive phase uses up the cooldown: the real one goes unheard
    false_first = clip(
        [(0.0, S.INTERESTED), (10.0, S.CONFUSED), (40.0, S.INTERESTED), (120.0, S.CONFUSED)]
    )
    assert tick_alerts(false_first, SustainedRule(20.0)) == [(30.0, S.CONFUSED)]
    rows = alert_table([false_first, flickering_confusion()], [SustainedRule(20.0, 0.6)])
    (row,) = rows
    assert row["confused_alerted"] == 0.5  # only the flickering student, in the phase
    # one false alert over 2 students × 180 attentive seconds
    assert row["false_alerts_per_hour"] == 1 / 360 * 3600
    assert row["confused_latency_s"] == 15.0
