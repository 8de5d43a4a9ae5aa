"""Alert policy: sustained confusion or boredom, or a head turned away or eyes closed for long →
one short private message to the teacher."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from engine.attention import AttentionSettings
from engine.sustained import StateHistory, SustainedRule
from engine.types import EngagementState

#: Slack for the jitter of the session's 1 s tick when comparing durations.
TICK_TOLERANCE_S = 0.1


class AlertKind(StrEnum):
    CONFUSED = "confused"
    BORED = "bored"
    CLASS_CONFUSED = "class_confused"
    LOOKED_AWAY = "looked_away"
    EYES_CLOSED = "eyes_closed"


@dataclass(frozen=True)
class AlertSettings:
    """When the teacher hears about a student or the class.

    - ``sustained_s=25``: a state must last 25 s before it is worth a teacher's attention. Chosen
      together with the model's offsets from data (``python -m engine.training.alert_rule``;
      criterion and tables in ``engine/weights/report/experiments.md``, summary in MODEL_CARD.md):
      on 52 simulated validation students (posed validation people and FER2013 validation faces,
      live box jitter, 5 fps, the live smoothing, tick and cooldown) 25 s alerted 85 % of the
      students in their confused phase and 67 % in their bored phase (30 s: 69 % / 44 %), missed
      13 % of students confused from the first minute (30 s: 29 %), and sent a false alert to 10 %
      of them while attentive (30 s: 8 %). The 12 held-out test people: 67 % / 67 %, one false.
      A calm face the model misreads draws a false alert at any hold (24 % of validation students
      within 5 minutes of resting face): see MODEL_CARD.md.
    - ``sustained_share=1.0``: the state must fill this share of the last ``sustained_s`` and be
      shown now (``engine.sustained``); 1.0 is "without a break". Shares of 0.5–0.8 of 20–40 s
      windows were simulated on 52 validation students (the live 1 s tick and cooldown): none
      alerted 5 points more students without more false alerts, so the default stays strict
      (MODEL_CARD.md, "Operating point").
    - ``cooldown_s=300``: after an alert, the same student and kind stay quiet for 5 minutes: the
      teacher knows; repeating it every half-minute would teach them to ignore the bot.
    - ``alert_bored=True``: boredom alerts can be switched off (some teachers only want confusion).
    - ``class_share=0.4`` and ``class_min_students=3``: a class-wide alert when at least 40 % of
      the students with a face in view (and at least 3 of them) are confused at once, held for
      ``class_sustained_s=10`` — a class-wide signal matters sooner than one student's, since it
      usually means the last explanation did not land. ``class_cooldown_s=180`` between them.
    - ``attention``: how long a head turned away (``looking_away_s=60``) or closed eyes
      (``eyes_closed_s=30``) must last before an alert (``engine.attention.AttentionSettings``);
      these alerts share ``cooldown_s`` per student and kind. ``alert_emotions=False`` (the
      ``attention`` mode) leaves only them.
    """

    sustained_s: float = 25.0
    sustained_share: float = 1.0
    cooldown_s: float = 300.0
    alert_bored: bool = True
    class_share: float = 0.4
    class_min_students: int = 3
    class_sustained_s: float = 10.0
    class_cooldown_s: float = 180.0
    attention: AttentionSettings = field(default_factory=AttentionSettings)
    alert_emotions: bool = True

    def __post_init__(self) -> None:
        if self.sustained_s < 0 or self.cooldown_s < 0 or self.class_sustained_s < 0:
            raise ValueError(
                "Expected non-negative durations. Received: "
                f"sustained_s={self.sustained_s}, cooldown_s={self.cooldown_s}, "
                f"class_sustained_s={self.class_sustained_s}"
            )
        if not 0.0 < self.sustained_share <= 1.0:
            raise ValueError(
                f"Expected 0 < sustained_share <= 1. Received: {self.sustained_share!r}"
            )
        if not 0.0 < self.class_share <= 1.0 or self.class_min_students < 1:
            raise ValueError(
                "Expected 0 < class_share <= 1 and class_min_students >= 1. Received: "
                f"{self.class_share}, {self.class_min_students}"
            )

    @property
    def sustained(self) -> SustainedRule:
        return SustainedRule(self.sustained_s, self.sustained_share)


@dataclass(frozen=True, slots=True)
class Alert:
    """A message for the teacher. ``student`` is ``None`` for class-wide alerts."""

    kind: AlertKind
    student: str | None
    text: str
    t: float


@dataclass
class _Student:
    #: The states of the last ``sustained_s``: the state now, since when, and what the window held.
    history: StateHistory
    #: Seconds the head has been turned away / the eyes closed without a break, at the last
    #: ``attention`` call (0: not now, or no reading).
    looking_away_s: float = 0.0
    eyes_closed_s: float = 0.0
    last_alert: dict[AlertKind, float] = field(default_factory=dict)

    @property
    def state(self) -> EngagementState | None:
        return self.history.state

    @property
    def since(self) -> float:
        return self.history.since or 0.0


class AlertPolicy:
    """Fed with each student's state changes and a clock; ``due(t)`` returns the alerts to send.

    Students are keyed by their label (the session's name for a participant): a student who
    drops out and rejoins keeps their history, cooldowns included. Labels come from participants,
    so at most ``max_students`` are kept: beyond it the longest-absent are forgotten.
    """

    #: Students remembered at most (absent ones beyond it are forgotten, oldest first).
    max_students = 1000

    def __init__(self, settings: AlertSettings | None = None) -> None:
        self.settings = settings or AlertSettings()
        self._students: dict[str, _Student] = {}
        self._class_since: float | None = None
        self._class_last_alert: float | None = None

    def _record(self, student: str) -> _Student:
        record = self._students.get(student)
        if record is None:
            record = self._students[student] = _Student(StateHistory(self.settings.sustained_s))
        return record

    def update(self, student: str, state: EngagementState, t: float) -> None:
        record = self._record(student)
        record.history.update(state, t)
        if state == EngagementState.NO_FACE:  # no face, no attention reading
            record.looking_away_s = record.eyes_closed_s = 0.0
        if len(self._students) > self.max_students:
            self._prune()

    def attention(self, student: str, looking_away_s: float, eyes_closed_s: float) -> None:
        """How long ``student``'s head has been turned away and eyes closed, without a break
        (``engine.attention.AttentionWindow``); call after ``update`` at each tick."""
        record = self._record(student)
        record.looking_away_s = looking_away_s
        record.eyes_closed_s = eyes_closed_s

    def _prune(self) -> None:
        absent = sorted(
            (r.since, name)
            for name, r in self._students.items()
            if r.state in (None, EngagementState.NO_FACE)
        )
        for _, name in absent[: len(self._students) - self.max_students]:
            del self._students[name]

    def forget(self, student: str) -> None:
        """Opt-out or departure: no alert is ever sent about ``student`` from state kept so far."""
        self._students.pop(student, None)

    def calibrated(self, student: str) -> None:
        """The teacher said ``student`` looks fine (``!fine``): the confused and bored alerts they
        answered no longer hold back the next ones (cooldowns cleared), and the state shown so far
        no longer counts towards a hold."""
        record = self._students.get(student)
        if record is None:
            return
        record.history = StateHistory(self.settings.sustained_s)
        for kind in (AlertKind.CONFUSED, AlertKind.BORED):
            record.last_alert.pop(kind, None)

    def due(self, t: float) -> list[Alert]:
        settings = self.settings
        alerts: list[Alert] = []
        for name, record in self._students.items():
            for kind, held, needed, window in self._held(record, t):
                last = record.last_alert.get(kind)
                # The clock ticks with a few ms of jitter: 7.998 s held "for 8 s" counts.
                due = held >= needed - TICK_TOLERANCE_S
                if due and (last is None or t - last >= settings.cooldown_s - TICK_TOLERANCE_S):
                    record.last_alert[kind] = t
                    alerts.append(Alert(kind, name, _text(kind, name, held, window), t))
        class_alert = self._class_alert(t) if settings.alert_emotions else None
        if class_alert is not None:
            alerts.append(class_alert)
        return alerts

    def _held(
        self, record: _Student, t: float
    ) -> list[tuple[AlertKind, float, float, float | None]]:
        """(kind, seconds held, seconds needed, the window they were counted in — ``None`` when
        held without a break) of what ``record`` shows now."""
        settings = self.settings
        held: list[tuple[AlertKind, float, float, float | None]] = []
        kind = _student_kind(record.state, settings.alert_bored)
        state = record.state
        if kind is not None and settings.alert_emotions and state is not None:
            rule, unbroken = settings.sustained, t - record.since
            if unbroken >= rule.needed_s - TICK_TOLERANCE_S:
                held.append((kind, unbroken, rule.needed_s, None))
            else:  # the same test as the simulation's (engine.sustained), counted in the window
                held.append(
                    (kind, record.history.seconds_in(state, t), rule.needed_s, rule.window_s)
                )
        if record.looking_away_s > 0:
            held.append(
                (
                    AlertKind.LOOKED_AWAY,
                    record.looking_away_s,
                    settings.attention.looking_away_s,
                    None,
                )
            )
        if record.eyes_closed_s > 0:
            held.append(
                (
                    AlertKind.EYES_CLOSED,
                    record.eyes_closed_s,
                    settings.attention.eyes_closed_s,
                    None,
                )
            )
        return held

    def _class_alert(self, t: float) -> Alert | None:
        settings = self.settings
        in_view = [
            s for s in self._students.values() if s.state not in (None, EngagementState.NO_FACE)
        ]
        confused = sum(1 for s in in_view if s.state == EngagementState.CONFUSED)
        wide = confused >= settings.class_min_students and confused >= settings.class_share * len(
            in_view
        )
        if not wide:
            self._class_since = None
            return None
        if self._class_since is None:
            self._class_since = t
        if t - self._class_since < settings.class_sustained_s:
            return None
        if (
            self._class_last_alert is not None
            and t - self._class_last_alert < settings.class_cooldown_s
        ):
            return None
        self._class_last_alert = t
        text = f"{confused} of {len(in_view)} students look confused right now"
        return Alert(AlertKind.CLASS_CONFUSED, None, text, t)


def _student_kind(state: EngagementState | None, alert_bored: bool) -> AlertKind | None:
    if state == EngagementState.CONFUSED:
        return AlertKind.CONFUSED
    if state == EngagementState.BORED and alert_bored:
        return AlertKind.BORED
    return None


def _text(kind: AlertKind, name: str, held: float, window: float | None = None) -> str:
    # Attention thresholds are round minutes (60 s): "looked away for 60 s" says the setting.
    if kind is AlertKind.LOOKED_AWAY:
        return f"{name} has looked away for {_seconds(held, below=120)}"
    if kind is AlertKind.EYES_CLOSED:
        return f"{name}'s eyes have been closed for {_seconds(held, below=120)}"
    if window is not None:  # counted in a window (``sustained_share`` below 1)
        return f"{name} has looked {kind.value} for {round(held)} of the last {round(window)} s"
    return f"{name} has looked {kind.value} for {_seconds(held)}"


def _seconds(duration: float, below: int = 60) -> str:
    """25 → "25 s", 95 → "1 min 35 s" (seconds only ``below`` that): short for a chat line."""
    whole = round(duration)
    if whole < below:
        return f"{whole} s"
    minutes, seconds = divmod(whole, 60)
    return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
