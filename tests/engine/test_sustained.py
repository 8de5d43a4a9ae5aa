"""The sustained part of the alert rule: seconds of a state within a window, bounded memory."""

from __future__ import annotations

import math

import pytest

from engine.sustained import StateHistory, SustainedRule
from engine.types import EngagementState as S


def test_seconds_in_counts_only_the_window() -> None:
    history = StateHistory(window_s=30.0)
    history.update(S.CONFUSED, 0.0)
    history.update(S.INTERESTED, 20.0)
    history.update(S.CONFUSED, 50.0)
    # window [30, 60]: interested 30–50, confused 50–60
    assert history.seconds_in(S.CONFUSED, 60.0) == pytest.approx(10.0)
    assert history.seconds_in(S.INTERESTED, 60.0) == pytest.approx(20.0)
    assert history.seconds_in(S.BORED, 60.0) == 0.0
    assert history.state is S.CONFUSED and history.since == 50.0


def test_repeated_updates_change_nothing_and_memory_stays_bounded() -> None:
    history = StateHistory(window_s=10.0)
    for tick in range(10_000):
        history.update(S.CONFUSED if tick % 4 else S.BORED, float(tick))
    assert len(history._changes) <= 10 // 1 + 2  # about the changes of one window
    assert history.seconds_in(S.CONFUSED, 9_999.0) + history.seconds_in(
        S.BORED, 9_999.0
    ) == pytest.approx(10.0)


def test_sustained_needs_the_state_now_and_its_share() -> None:
    rule = SustainedRule(window_s=30.0, share=0.6)
    history = StateHistory(rule.window_s)
    history.update(S.CONFUSED, 0.0)
    assert history.sustained(rule, S.CONFUSED, 17.0) is None  # 17 of 18 needed
    assert history.sustained(rule, S.CONFUSED, 18.0) == pytest.approx(18.0)
    history.update(S.INTERESTED, 19.0)
    assert history.sustained(rule, S.CONFUSED, 20.0) is None  # not shown now


def test_the_strict_rule_is_a_stretch_without_a_break() -> None:
    rule = SustainedRule(window_s=10.0)
    history = StateHistory(rule.window_s)
    history.update(S.BORED, 0.0)
    history.update(S.INTERESTED, 9.0)
    history.update(S.BORED, 9.5)
    assert history.sustained(rule, S.BORED, 15.0) is None  # 9.5 of 10 in the window
    assert history.sustained(rule, S.BORED, 19.5, slack=1e-9) == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("window", "share"), [(-1.0, 0.5), (math.inf, 0.5), (30.0, 0.0), (30.0, 1.01)]
)
def test_nonsense_rules_are_refused(window: float, share: float) -> None:
    with pytest.raises(ValueError, match="Expected"):
        SustainedRule(window, share)
