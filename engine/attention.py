"""Attention over time for one person: how long the head has been turned away, how long the eyes
have been closed, and PERCLOS (the share of closed-eye time over a window).

Physical signals only (head direction, eye closure; EU AI Act Recital 18): nothing here infers an
emotion. Pure and synchronous: the session pushes each frame's ``Attention`` reading and asks at
its 1 Hz tick.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from engine.types import Attention


@dataclass(frozen=True)
class AttentionSettings:
    """When a turned head or closed eyes is worth a teacher's attention, and how readings are read.

    - ``looking_away_s=60``: a head turned away for a minute is "not following", not a glance at
      notes or a second screen; shorter turns are normal in a class. The alert reads "Tom has
      looked away for 60 s".
    - ``eyes_closed_s=30``: eyes closed for half a minute is no blink or a moment of thought (a
      blink lasts 0.1–0.4 s); "Tom's eyes have been closed for 30 s".
    - ``blip_s=1.0``: a run (looking away, eyes closed) survives a gap of up to 1 s without a
      reading that continues it: a single frame read the other way (a blink inside closed eyes is
      impossible, but a detector flip is not), a frame with no reading (``None``: no landmarks),
      or a short moment without a face. A longer gap ends the run. At 5 analysed frames a second
      this tolerates up to 4 frames in a row.
    - ``perclos_window_s=60``: PERCLOS (percentage of eye closure) is the share of readings with
      the eyes closed over the last 60 s — the fatigue measure of driver-monitoring research,
      where windows of one to a few minutes are usual; blinks count for what they last, so an
      alert person's PERCLOS stays low (a few %).
    - ``max_readings_per_s=30``: memory bound of the PERCLOS window (readings beyond it, at a
      higher frame rate, push the oldest out early).
    """

    looking_away_s: float = 60.0
    eyes_closed_s: float = 30.0
    blip_s: float = 1.0
    perclos_window_s: float = 60.0
    max_readings_per_s: int = 30

    def __post_init__(self) -> None:
        durations = {
            "looking_away_s": self.looking_away_s,
            "eyes_closed_s": self.eyes_closed_s,
            "blip_s": self.blip_s,
        }
        for name, value in durations.items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"Expected {name} >= 0 seconds. Received: {value!r}")
        if not (math.isfinite(self.perclos_window_s) and self.perclos_window_s > 0):
            raise ValueError(
                f"Expected perclos_window_s > 0 seconds. Received: {self.perclos_window_s!r}"
            )
        if self.max_readings_per_s < 1:
            raise ValueError(
                f"Expected max_readings_per_s >= 1. Received: {self.max_readings_per_s!r}"
            )


@dataclass(frozen=True, slots=True)
class AttentionSummary:
    """One person's readings over a short span (one sample period): what a stored sample holds."""

    #: Mean head angles (degrees) of the span's readings; see ``engine.types.Attention``.
    yaw_deg: float
    pitch_deg: float
    #: The eyes were open in at least half of the span's readings (a blink does not close them).
    eyes_open: bool
    #: The head was turned away in more than half of the span's readings (a tie is not away).
    looking_away: bool
    num_readings: int


class _Run:
    """A continuous run of one condition, surviving gaps up to ``blip_s`` (see the settings)."""

    def __init__(self, blip_s: float) -> None:
        self._blip_s = blip_s
        self.since: float | None = None
        self.last: float | None = None

    def push(self, t: float, holds: bool) -> None:
        if not holds:
            return  # a contrary reading ends the run only once it lasts longer than blip_s
        if self.last is None or t - self.last > self._blip_s:
            self.since = t
        self.last = t

    def duration(self, t: float) -> float:
        """Seconds the run has lasted, 0 unless it is still going at ``t``."""
        if self.since is None or self.last is None or t - self.last > self._blip_s:
            return 0.0
        return self.last - self.since


class AttentionWindow:
    """One person's attention readings over time; ``push`` each frame, ask at any time ``t``.

    A ``None`` reading (no landmarks: the Haar face stage, or a face the landmark stage could not
    read) is "not known": it never counts as looking away or as closed eyes, nor as the opposite.
    Times are seconds on one clock, pushed in order.
    """

    def __init__(self, settings: AttentionSettings | None = None) -> None:
        self.settings = settings or AttentionSettings()
        self._away = _Run(self.settings.blip_s)
        self._closed = _Run(self.settings.blip_s)
        bound = max(1, int(self.settings.perclos_window_s * self.settings.max_readings_per_s))
        #: (t, attention) of the readings in the PERCLOS window, oldest first.
        self._readings: deque[tuple[float, Attention]] = deque(maxlen=bound)
        #: Readings in the window with the eyes closed (kept as they come and go: O(1) PERCLOS).
        self._num_closed = 0

    def push(self, t: float, attention: Attention | None) -> None:
        if attention is None:
            return
        self._away.push(t, attention.looking_away)
        self._closed.push(t, not attention.eyes_open)
        if len(self._readings) == self._readings.maxlen:
            self._drop_oldest()
        self._readings.append((t, attention))
        self._num_closed += not attention.eyes_open
        self._trim(t)

    def looking_away_for(self, t: float) -> float:
        """Seconds the head has been turned away without a break (0 when it is not now)."""
        return self._away.duration(t)

    def eyes_closed_for(self, t: float) -> float:
        """Seconds the eyes have been closed without a break (0 when they are not now)."""
        return self._closed.duration(t)

    def perclos(self, t: float) -> float | None:
        """Share of readings in ``(t - perclos_window_s, t]`` with the eyes closed; ``None``
        without readings in the window."""
        self._trim(t)
        if not self._readings:
            return None
        return self._num_closed / len(self._readings)

    def summary(self, since: float, t: float) -> AttentionSummary | None:
        """The readings in ``(since, t]`` summed up; ``None`` when there are none."""
        span = []
        for when, reading in reversed(self._readings):  # the newest few, not the whole window
            if when <= since:
                break
            if when <= t:
                span.append(reading)
        if not span:
            return None
        num = len(span)
        return AttentionSummary(
            yaw_deg=sum(r.yaw_deg for r in span) / num,
            pitch_deg=sum(r.pitch_deg for r in span) / num,
            eyes_open=sum(1 for r in span if r.eyes_open) * 2 >= num,
            looking_away=sum(1 for r in span if r.looking_away) * 2 > num,
            num_readings=num,
        )

    def _trim(self, t: float) -> None:
        cutoff = t - self.settings.perclos_window_s
        while self._readings and self._readings[0][0] <= cutoff:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, reading = self._readings.popleft()
        self._num_closed -= not reading.eyes_open
