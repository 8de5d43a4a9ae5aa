"""The "sustained" part of the alert rule: how long a student has shown a state lately.

A state held *without a break* for 30 s is a strict test: one second of a misread face in the
middle restarts the clock, and on people the model never saw that happens often enough that a
student confused for a whole minute may never be reported. :class:`SustainedRule` asks instead
for a share of a recent window — "confused for at least 21 of the last 30 s" — and
:class:`StateHistory` keeps the few state changes the window needs.

One copy of the rule serves the bot's alert policy (``bot.alerts``) and the simulation that chose
its numbers (``engine.training.alert_rule``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from engine.types import EngagementState


@dataclass(frozen=True)
class SustainedRule:
    """A state counts as sustained when it filled ``share`` of the last ``window_s`` seconds and
    is the state shown now. ``share=1.0`` is the strict rule: held without a break for the whole
    window."""

    window_s: float = 30.0
    share: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.window_s) and self.window_s >= 0):
            raise ValueError(f"Expected window_s >= 0 seconds. Received: {self.window_s!r}")
        if not (math.isfinite(self.share) and 0.0 < self.share <= 1.0):
            raise ValueError(f"Expected 0 < share <= 1. Received: {self.share!r}")

    @property
    def needed_s(self) -> float:
        """Seconds of the state the window must hold."""
        return self.window_s * self.share


class StateHistory:
    """One person's state changes over the last ``window_s`` seconds (and the state before them).

    Memory is bounded by the number of changes inside one window: older ones are dropped as
    time moves on.
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._changes: deque[tuple[float, EngagementState]] = deque()

    @property
    def state(self) -> EngagementState | None:
        return self._changes[-1][1] if self._changes else None

    @property
    def since(self) -> float | None:
        """When the current state began (``None`` before the first state)."""
        return self._changes[-1][0] if self._changes else None

    def update(self, state: EngagementState, t: float) -> None:
        """Record the state shown at ``t`` (a repeat of the current state changes nothing)."""
        if self.state != state:
            self._changes.append((t, state))
        # Keep the last change at or before the window's start: it says what the window began with.
        while len(self._changes) >= 2 and self._changes[1][0] <= t - self.window_s:
            self._changes.popleft()

    def seconds_in(self, state: EngagementState, t: float) -> float:
        """Seconds of the window ending at ``t`` in which ``state`` was shown."""
        start = t - self.window_s
        total = 0.0
        changes = list(self._changes)
        for index, (begun, shown) in enumerate(changes):
            ended = changes[index + 1][0] if index + 1 < len(changes) else t
            if shown == state:
                total += max(0.0, min(ended, t) - max(begun, start))
        return total

    def sustained(
        self, rule: SustainedRule, state: EngagementState, t: float, slack: float = 0.0
    ) -> float | None:
        """Seconds of ``state`` in the window when the rule is met at ``t`` (``state`` shown now and
        at least ``rule.needed_s - slack`` of it), else ``None``."""
        if self.state != state:
            return None
        held = self.seconds_in(state, t)
        return held if held >= rule.needed_s - slack else None
