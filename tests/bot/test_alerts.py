"""Alert policy and chat commands, driven by a fake clock."""

from __future__ import annotations

import pytest

from bot.alerts import Alert, AlertKind, AlertPolicy, AlertSettings
from bot.commands import Command, parse_command
from engine.attention import AttentionSettings
from engine.types import EngagementState as S


def run(policy: AlertPolicy, until: float, step: float = 1.0, start: float = 0.0) -> list[Alert]:
    alerts, t = [], start
    while t <= until:
        alerts += policy.due(t)
        t += step
    return alerts


def test_sustained_confusion_alerts_once_with_duration() -> None:
    policy = AlertPolicy(AlertSettings(sustained_s=20, cooldown_s=300))
    policy.update("Ana", S.CONFUSED, 0.0)
    policy.update("Ben", S.INTERESTED, 0.0)
    alerts = run(policy, 60)
    assert alerts == [Alert(AlertKind.CONFUSED, "Ana", "Ana has looked confused for 20 s", 20.0)]


def test_short_confusion_never_alerts() -> None:
    policy = AlertPolicy(AlertSettings(sustained_s=20))
    policy.update("Ana", S.CONFUSED, 0.0)
    assert run(policy, 15) == []
    policy.update("Ana", S.INTERESTED, 16.0)
    assert run(policy, 100, start=16) == []


def test_cooldown_per_student_and_kind() -> None:
    policy = AlertPolicy(AlertSettings(sustained_s=10, cooldown_s=100))
    policy.update("Ana", S.CONFUSED, 0.0)
    first = run(policy, 50)
    assert [a.t for a in first] == [10.0]
    policy.update("Ana", S.BORED, 51.0)  # another kind: its own cooldown
    bored = run(policy, 80, start=51)
    assert [(a.kind, a.t) for a in bored] == [(AlertKind.BORED, 61.0)]
    policy.update("Ana", S.CONFUSED, 81.0)
    again = run(policy, 130, start=81)
    assert [a.t for a in again] == [110.0]  # 100 s after the first confusion alert


def test_a_calibrated_student_starts_afresh_but_keeps_attention_cooldowns() -> None:
    """After ``!fine Ana`` the alert the teacher answered holds nothing back: real confusion
    later is reported after a full hold, not after the 5-minute cooldown."""
    policy = AlertPolicy(AlertSettings(sustained_s=10, cooldown_s=300))
    policy.update("Ana", S.CONFUSED, 0.0)
    policy.attention("Ana", looking_away_s=120.0, eyes_closed_s=0.0)
    assert {a.kind for a in run(policy, 12)} == {AlertKind.CONFUSED, AlertKind.LOOKED_AWAY}
    policy.calibrated("Ana")
    policy.calibrated("Nobody")  # unknown: nothing to do
    assert run(policy, 20, start=13) == []  # the state shown so far no longer counts
    policy.update("Ana", S.INTERESTED, 21.0)
    policy.update("Ana", S.CONFUSED, 30.0)
    again = run(policy, 60, start=21)
    assert [(a.kind, a.t) for a in again] == [(AlertKind.CONFUSED, 40.0)]  # no cooldown left
    assert all(a.kind is not AlertKind.LOOKED_AWAY for a in again)  # that cooldown stays


def test_bored_alerts_can_be_switched_off() -> None:
    policy = AlertPolicy(AlertSettings(sustained_s=5, alert_bored=False))
    policy.update("Ana", S.BORED, 0.0)
    assert run(policy, 60) == []


def test_class_wide_alert_needs_share_and_count() -> None:
    settings = AlertSettings(
        sustained_s=1000, class_share=0.4, class_min_students=3, class_sustained_s=5
    )
    policy = AlertPolicy(settings)
    for name in ("A", "B", "C", "D", "E", "F", "G", "H"):
        policy.update(name, S.INTERESTED, 0.0)
    policy.update("A", S.CONFUSED, 0.0)
    policy.update("B", S.CONFUSED, 0.0)
    assert run(policy, 20) == []  # 2 of 8: neither the count nor the share
    policy.update("C", S.CONFUSED, 21.0)
    policy.update("D", S.NO_FACE, 21.0)
    assert run(policy, 24, start=21) == []  # 3 of 7 in view, not yet held 5 s
    alerts = run(policy, 40, start=25)
    assert [(a.kind, a.student, a.text) for a in alerts] == [
        (AlertKind.CLASS_CONFUSED, None, "3 of 7 students look confused right now")
    ]


def test_forgotten_student_never_alerts() -> None:
    policy = AlertPolicy(AlertSettings(sustained_s=10))
    policy.update("Ana", S.CONFUSED, 0.0)
    policy.forget("Ana")
    assert run(policy, 60) == []


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"class_share.*Received: 0.0"):
        AlertSettings(class_share=0.0)
    with pytest.raises(ValueError, match=r"non-negative.*sustained_s=-1"):
        AlertSettings(sustained_s=-1)


@pytest.mark.parametrize(
    ("text", "teacher", "command", "allowed"),
    [
        ("!status", True, Command.STATUS, True),
        ("  !STATUS  ", True, Command.STATUS, True),
        ("!status", False, Command.STATUS, False),
        ("!leave", False, Command.LEAVE, False),
        ("!optout please", False, Command.OPTOUT, True),
        ("!optin", False, Command.OPTIN, True),
    ],
)
def test_commands_and_who_may_use_them(
    text: str, teacher: bool, command: Command, allowed: bool
) -> None:
    parsed = parse_command(text, from_teacher=teacher)
    assert parsed is not None and parsed.command == command and parsed.allowed == allowed


@pytest.mark.parametrize(
    "text", ["hello", "!", "!dance", "! status", "!" + "x" * 500, "", "status!"]
)
def test_ordinary_chat_is_not_a_command(text: str) -> None:
    assert parse_command(text, from_teacher=True) is None


def test_absent_students_are_forgotten_beyond_the_cap() -> None:
    policy = AlertPolicy(AlertSettings())
    policy.max_students = 3
    for index in range(10):  # a flood of names, each gone at once
        policy.update(f"name {index}", S.NO_FACE, float(index))
    policy.update("Ana", S.CONFUSED, 20.0)
    assert len(policy._students) <= 3 and "Ana" in policy._students


def test_claim_is_a_command_with_its_code() -> None:
    parsed = parse_command("!claim  K7MQ-x2pa ", from_teacher=False)
    assert parsed is not None and parsed.command is Command.CLAIM and parsed.allowed
    assert parsed.argument == "K7MQ-x2pa"
    assert parse_command("!claim\tabc", from_teacher=False).argument == "abc"  # type: ignore[union-attr]


# -- attention alerts -------------------------------------------------------------------------


def attention_run(
    policy: AlertPolicy, name: str, start: float, until: float, *, away: bool, closed: bool
) -> list[Alert]:
    """A student whose head is turned away and/or eyes closed from ``start``, ticked each second."""
    alerts, t = [], start
    while t <= until:
        policy.update(name, S.PRESENT, t)
        policy.attention(name, t - start if away else 0.0, t - start if closed else 0.0)
        alerts += policy.due(t)
        t += 1.0
    return alerts


def test_looking_away_and_eyes_closed_alert_with_their_texts() -> None:
    policy = AlertPolicy(AlertSettings(cooldown_s=300))
    away = attention_run(policy, "Tom", 0, 100, away=True, closed=False)
    assert away == [Alert(AlertKind.LOOKED_AWAY, "Tom", "Tom has looked away for 60 s", 60.0)]
    closed = attention_run(policy, "Ada", 0, 100, away=False, closed=True)
    assert closed == [
        Alert(AlertKind.EYES_CLOSED, "Ada", "Ada's eyes have been closed for 30 s", 30.0)
    ]


def test_attention_thresholds_come_from_settings_and_share_the_cooldown() -> None:
    settings = AlertSettings(cooldown_s=100, attention=AttentionSettings(looking_away_s=20))
    policy = AlertPolicy(settings)
    alerts = attention_run(policy, "Tom", 0, 150, away=True, closed=False)
    assert [(a.t, a.text) for a in alerts] == [
        (20.0, "Tom has looked away for 20 s"),
        (120.0, "Tom has looked away for 2 min"),  # still away after the cooldown
    ]


def test_no_attention_reading_never_alerts_and_no_face_resets() -> None:
    policy = AlertPolicy(AlertSettings(sustained_s=5))
    for t in range(0, 200):
        policy.update("Tom", S.PRESENT, float(t))  # a face, no attention reading: nothing
        assert policy.due(float(t)) == []
    policy.attention("Tom", 59.0, 0.0)
    policy.update("Tom", S.NO_FACE, 200.0)  # the face is gone: so is the reading
    assert policy.due(260.0) == []


def test_attention_mode_alerts_on_attention_only() -> None:
    policy = AlertPolicy(AlertSettings(sustained_s=5, class_sustained_s=0, alert_emotions=False))
    for name in ("A", "B", "C"):
        policy.update(name, S.CONFUSED, 0.0)  # never happens in attention mode; still no alert
    assert run(policy, 60) == []
    policy.attention("A", 61.0, 0.0)
    assert [a.kind for a in policy.due(61.0)] == [AlertKind.LOOKED_AWAY]


# -- a share of the window (``sustained_share``) ----------------------------------------------


def flicker(policy: AlertPolicy, name: str, until: float) -> list[Alert]:
    """Confused, but misread as interested for 2 s of every 8 (the model on a face it never saw)."""
    alerts, t = [], 0.0
    while t <= until:
        policy.update(name, S.INTERESTED if t % 8 >= 6 else S.CONFUSED, t)
        alerts += policy.due(t)
        t += 1.0
    return alerts


def test_flickering_confusion_never_alerts_under_the_strict_rule() -> None:
    assert flicker(AlertPolicy(AlertSettings(sustained_s=30)), "Ana", 120) == []


def test_a_share_of_the_window_alerts_on_flickering_confusion_and_says_so() -> None:
    policy = AlertPolicy(AlertSettings(sustained_s=30, sustained_share=0.7))
    alerts = flicker(policy, "Ana", 120)
    assert len(alerts) == 1 and alerts[0].kind is AlertKind.CONFUSED
    # confused 0–6, 8–14, 16–22, 24–: 21 s (70 % of 30) first reached at t = 27, confused then
    assert alerts[0].t == 27.0
    assert alerts[0].text == "Ana has looked confused for 21 of the last 30 s"


def test_a_share_of_the_window_needs_the_state_now_and_enough_of_it() -> None:
    policy = AlertPolicy(AlertSettings(sustained_s=30, sustained_share=0.7))
    policy.update("Ana", S.CONFUSED, 0.0)
    policy.update("Ana", S.INTERESTED, 20.0)  # 20 s of 30 confused, then not any more
    assert run(policy, 25) == []
    policy.update("Ana", S.CONFUSED, 26.0)  # back: 20 + 1 s of the last 30 → 21 s at t = 27
    alerts = run(policy, 40, start=26)
    assert [(a.t, a.text) for a in alerts] == [
        (27.0, "Ana has looked confused for 21 of the last 30 s")
    ]


def test_unbroken_confusion_says_how_long_under_a_share_too() -> None:
    policy = AlertPolicy(AlertSettings(sustained_s=30, sustained_share=0.5))
    policy.update("Ana", S.CONFUSED, 0.0)
    assert [(a.t, a.text) for a in run(policy, 60)] == [(15.0, "Ana has looked confused for 15 s")]


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5, float("nan")])
def test_a_nonsense_share_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match=r"0 < sustained_share <= 1. Received"):
        AlertSettings(sustained_share=share)


def test_fine_is_the_teachers_command_with_a_name() -> None:
    parsed = parse_command("!fine  Ana (2) ", from_teacher=True)
    assert parsed is not None and parsed.command is Command.FINE and parsed.allowed
    assert parsed.argument == "Ana (2)"
    student = parse_command("!FINE Ana", from_teacher=False)
    assert student is not None and not student.allowed  # a student cannot calibrate anyone
