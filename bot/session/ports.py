"""What the session's helpers (the teacher desk, the chat commands) need of their session.

Protocols, so ``bot.session.teacher`` and ``bot.session.commands`` depend on this shape and not
on ``bot.session``, which builds them: the import arrows point one way.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from bot.meetings.protocol import Participant
from bot.students import Student, StudentRoster
from storage import Writer


class CalibrationOutcome(StrEnum):
    """What ``!fine NAME`` did."""

    DONE = "done"
    UNKNOWN = "unknown"  # no such person in this class (or opted out)
    TOO_FEW = "too_few"  # too few recent scores of theirs to learn from


class SessionVoice(Protocol):
    """What the teacher desk uses: the chat, the writer and the live feed of one meeting."""

    meeting_id: str
    writer: Writer

    async def say(self, text: str, to: Participant | None = None) -> bool: ...

    def publish(self, event: dict[str, object]) -> None: ...


class Claims(Protocol):
    """Where a ``!claim`` goes (``bot.session.teacher.TeacherDesk``)."""

    async def claim(self, sender: Participant, argument: str, *, whisper: bool) -> None: ...


class CommandedSession(SessionVoice, Protocol):
    """What the chat commands act on (``bot.session.MeetingSession``)."""

    paused: bool

    @property
    def students(self) -> StudentRoster: ...

    @property
    def teacher_desk(self) -> Claims: ...

    def is_teacher(self, participant: Participant) -> bool: ...

    async def whisper_teacher(self, text: str) -> bool: ...

    def status_text(self) -> str: ...

    def set_paused(self, paused: bool) -> None: ...

    async def stop(self, reason: str = ...) -> None: ...

    async def opt_out(self, student: Student, *, publish: bool = ...) -> None: ...

    async def opt_in(self, student: Student) -> bool: ...

    def calibrate(self, label: str) -> CalibrationOutcome: ...
