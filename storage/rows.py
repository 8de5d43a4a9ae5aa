"""What the live path hands the writer: small frozen rows, checked on creation, never ORM objects.

Rows name meetings by the id the bot chose (``new_meeting_id()``) and participants by display
name, so the bot never waits for a database id. Times ``t`` are UTC Unix seconds.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from enum import StrEnum

from engine.types import EngagementState
from storage.models import NAME_LENGTH

#: Longest meeting id (the column is String(64)).
MEETING_ID_LENGTH = 64
#: Longest alert kind (String(32)) and platform name (String(32)).
KIND_LENGTH = 32


class ConsentKind(StrEnum):
    """Consent events: the notice was posted to the meeting, a participant opted out or back in."""

    NOTICE = "notice"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"


def new_meeting_id() -> str:
    """A fresh meeting id; the bot makes it so ``MeetingOpened`` never waits for the database."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class MeetingOpened:
    """The bot joined a meeting; ``sample_period_s`` is the cadence of one person's samples."""

    meeting_id: str
    platform: str
    room: str
    t: float
    title: str | None = None
    teacher: str | None = None
    sample_period_s: float = 1.0

    def __post_init__(self) -> None:
        _check_text("meeting_id", self.meeting_id, MEETING_ID_LENGTH)
        _check_text("platform", self.platform, KIND_LENGTH)
        _check_text("room", self.room, NAME_LENGTH)
        _check_optional_text("title", self.title, NAME_LENGTH)
        _check_optional_text("teacher", self.teacher, NAME_LENGTH)
        _check_time(self.t)
        if not (math.isfinite(self.sample_period_s) and self.sample_period_s > 0):
            raise ValueError(
                f"Expected sample_period_s > 0 seconds. Received: {self.sample_period_s!r}"
            )


@dataclass(frozen=True, slots=True)
class MeetingClosed:
    """The meeting ended or the bot left it."""

    meeting_id: str
    t: float

    def __post_init__(self) -> None:
        _check_text("meeting_id", self.meeting_id, MEETING_ID_LENGTH)
        _check_time(self.t)


@dataclass(frozen=True, slots=True)
class ParticipantJoined:
    """A student joined; the same display name again in the same meeting is the same person."""

    meeting_id: str
    display_name: str
    t: float
    platform_id: str | None = None

    def __post_init__(self) -> None:
        _check_text("meeting_id", self.meeting_id, MEETING_ID_LENGTH)
        _check_text("display_name", self.display_name, NAME_LENGTH)
        _check_optional_text("platform_id", self.platform_id, NAME_LENGTH)
        _check_time(self.t)


@dataclass(frozen=True, slots=True)
class ParticipantLeft:
    """A student left (they may come back under the same name)."""

    meeting_id: str
    display_name: str
    t: float

    def __post_init__(self) -> None:
        _check_text("meeting_id", self.meeting_id, MEETING_ID_LENGTH)
        _check_text("display_name", self.display_name, NAME_LENGTH)
        _check_time(self.t)


@dataclass(frozen=True, slots=True)
class Sample:
    """One person's engagement at ``t``; probabilities are ``None`` while no face is visible."""

    meeting_id: str
    display_name: str
    t: float
    state: EngagementState
    face_present: bool
    p_interested: float | None = None
    p_bored: float | None = None
    p_confused: float | None = None
    #: Attention (``engine.types.Attention`` over the sample period); ``None`` without a
    #: reading (no face, or a face stage without landmarks). Head angles in degrees.
    yaw: float | None = None
    pitch: float | None = None
    eyes_open: bool | None = None
    looking_away: bool | None = None

    def __post_init__(self) -> None:
        _check_text("meeting_id", self.meeting_id, MEETING_ID_LENGTH)
        _check_text("display_name", self.display_name, NAME_LENGTH)
        _check_time(self.t)
        object.__setattr__(self, "state", _state("state", self.state))
        if not isinstance(self.face_present, bool):
            raise ValueError(f"Expected face_present to be a bool. Received: {self.face_present!r}")
        for name in ("yaw", "pitch"):
            value = getattr(self, name)
            if value is None:
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not -180.0 <= value <= 180.0
            ):
                raise ValueError(
                    f"Expected {name} in degrees from -180 to 180. Received: {value!r}"
                )
            object.__setattr__(self, name, float(value))
        for name in ("eyes_open", "looking_away"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"Expected {name} to be a bool or None. Received: {value!r}")
        for name in ("p_interested", "p_bored", "p_confused"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"Expected {name} to be a probability. Received: {value!r}")
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Expected {name} in [0, 1]. Received: {value!r}")
            object.__setattr__(self, name, float(value))


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The smoothed state of one person changed at ``t`` (the frame time that changed it);
    ``from_state`` is ``None`` for the first one; ``confidence`` is the smoothed probability of
    ``to_state`` then (``None`` when no model judged it)."""

    meeting_id: str
    display_name: str
    t: float
    to_state: EngagementState
    from_state: EngagementState | None = None
    confidence: float | None = None

    def __post_init__(self) -> None:
        _check_text("meeting_id", self.meeting_id, MEETING_ID_LENGTH)
        _check_text("display_name", self.display_name, NAME_LENGTH)
        _check_time(self.t)
        object.__setattr__(self, "to_state", _state("to_state", self.to_state))
        if self.from_state is not None:
            object.__setattr__(self, "from_state", _state("from_state", self.from_state))
        value = self.confidence
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"Expected confidence to be a probability. Received: {value!r}")
            if not 0.0 <= value <= 1.0:  # also refuses NaN
                raise ValueError(f"Expected confidence in [0, 1]. Received: {value!r}")
            object.__setattr__(self, "confidence", float(value))


@dataclass(frozen=True, slots=True)
class AlertRaised:
    """An alert for the teacher; ``display_name`` is ``None`` for a class-wide alert."""

    meeting_id: str
    t: float
    kind: str
    text: str
    delivered: bool
    display_name: str | None = None

    def __post_init__(self) -> None:
        _check_text("meeting_id", self.meeting_id, MEETING_ID_LENGTH)
        _check_time(self.t)
        _check_text("kind", self.kind, KIND_LENGTH)
        if not isinstance(self.text, str):
            raise ValueError(f"Expected alert text to be a string. Received: {self.text!r}")
        if not isinstance(self.delivered, bool):
            raise ValueError(f"Expected delivered to be a bool. Received: {self.delivered!r}")
        _check_optional_text("display_name", self.display_name, NAME_LENGTH)


@dataclass(frozen=True, slots=True)
class ConsentRecorded:
    """A consent event. ``OPT_OUT`` deletes this meeting's rows about the participant at once."""

    meeting_id: str
    t: float
    kind: ConsentKind
    display_name: str | None = None

    def __post_init__(self) -> None:
        _check_text("meeting_id", self.meeting_id, MEETING_ID_LENGTH)
        _check_time(self.t)
        try:
            object.__setattr__(self, "kind", ConsentKind(self.kind))
        except ValueError:
            raise ValueError(
                f"Expected a consent kind in {[k.value for k in ConsentKind]}. "
                f"Received: {self.kind!r}"
            ) from None
        _check_optional_text("display_name", self.display_name, NAME_LENGTH)
        if self.kind is not ConsentKind.NOTICE and self.display_name is None:
            raise ValueError(
                f"Expected the display name of who opted out or in. Received: kind={self.kind!r} "
                "with display_name=None"
            )


#: Everything ``Writer.submit`` accepts.
Row = (
    MeetingOpened
    | MeetingClosed
    | ParticipantJoined
    | ParticipantLeft
    | Sample
    | StateChanged
    | AlertRaised
    | ConsentRecorded
)

#: The rows that come at a fixed cadence and are the first to go when the writer's buffer is full.
BULK_ROWS = (Sample, StateChanged)


def _check_text(name: str, value: object, max_length: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"Expected {name} to be a non-empty string. Received: {value!r}")
    if len(value) > max_length:
        raise ValueError(
            f"Expected {name} of at most {max_length} characters. "
            f"Received: {len(value)} characters ({value[:40]!r}...)"
        )


def _check_optional_text(name: str, value: object, max_length: int) -> None:
    if value is not None:
        _check_text(name, value, max_length)


def _check_time(t: object) -> None:
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0:
        raise ValueError(
            f"Expected t as Unix time in seconds (a finite number >= 0). Received: {t!r}"
        )


def _state(name: str, value: object) -> EngagementState:
    if isinstance(value, str) and value in EngagementState._value2member_map_:
        return EngagementState(value)
    raise ValueError(
        f"Expected {name} in {[s.value for s in EngagementState]}. Received: {value!r}"
    )
