"""A meeting session: the bot in one class — analysis, states, alerts, commands, consent, storage.

It talks to the meeting only through ``MeetingConnector`` and to the model only through the
``ScoringHub``; every row goes to the storage writer, which never makes the session wait.
Authority and consent follow participants (the connector's ids), never display names: the
teacher is whoever claimed with the teacher code (``bot.teacher``), a student is a participant
(``bot.students``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import Executor

from bot.alerts import AlertPolicy
from bot.live import LiveFeed
from bot.meetings.protocol import (
    ChatReceived,
    ChatUnavailableError,
    ConnectionLost,
    ConnectionRestored,
    MeetingConnector,
    MeetingEnded,
    MeetingEvent,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    VideoTrackAdded,
    VideoTrackRemoved,
    normalize_display_name,
)
from bot.session.analysis import ClassAnalysis
from bot.session.commands import CalibrationOutcome, ChatCommands
from bot.session.notice import NoticeBoard
from bot.session.settings import NOTICE, MeetingScorer, ScoringHubLike, SessionSettings
from bot.session.teacher import TeacherDesk
from bot.students import Student, StudentRoster
from bot.teacher import name_key
from engine.faces import FaceDetector
from engine.frame_path import PersonStates
from storage import (
    AlertRaised,
    ConsentKind,
    ConsentRecorded,
    MeetingClosed,
    MeetingOpened,
    Writer,
    new_meeting_id,
)
from storage import ParticipantJoined as JoinedRow
from storage import ParticipantLeft as LeftRow

logger = logging.getLogger(__name__)

#: The kind of the stored row that marks a teacher's ``!fine NAME`` on NAME's timeline.
CALIBRATED_KIND = "calibrated"

__all__ = ["NOTICE", "RECLAIM", "MeetingSession", "SessionSettings"]

RECLAIM = (
    "classpulse is back after losing the class for a moment. Teacher: whisper !claim with your "
    "code to the bot again to get the alerts (they are kept until then)."
)


class MeetingSession(ClassAnalysis):
    """Run with ``await session.run()``; ``await session.stop(reason)`` makes it leave."""

    def __init__(
        self,
        connector: MeetingConnector,
        settings: SessionSettings,
        writer: Writer,
        scoring: ScoringHubLike,
        detector: FaceDetector,
        executor: Executor,
        live: LiveFeed | None = None,
        meeting_id: str | None = None,
    ) -> None:
        """``meeting_id``: the stored meeting to continue (a bot restarted elsewhere, e.g. by
        Ray); ``None``: a new one."""
        self.connector = connector
        self.settings = settings
        self.writer = writer
        self.scoring = scoring
        self.detector = detector
        self.executor = executor
        self.live = live or LiveFeed()
        self.meeting_id = meeting_id or new_meeting_id()
        self.teacher_name = normalize_display_name(settings.teacher)
        self.paused = False
        self.state = "starting"
        self.stop_reason: str | None = None
        self.num_alerts = 0
        self.num_frames_analysed = 0
        self.students = StudentRoster()
        self.teacher_desk = TeacherDesk(self, settings.teacher_code, self._teacher_claimed)
        self.notices = NoticeBoard(self.say, self._notice_posted, self.meeting_id, settings.notice)
        self._persons = {}
        self._states = PersonStates(
            MeetingScorer(scoring, self.meeting_id) if settings.reads_emotions else None,
            settings.states,
            face_timeout_s=settings.face_timeout_s,
        )
        self._alerts = AlertPolicy(settings.alerts)
        self._alone_since: float | None = None
        self._reclaim = False
        self.commands = ChatCommands(self)
        self._events_task: asyncio.Task[None] | None = None

    @property
    def num_followed(self) -> int:
        """Students whose video is being analysed now (for ``/metrics``)."""
        return sum(1 for s in self.students if s.analysis is not None and not s.opted_out)

    @property
    def teacher(self) -> Participant | None:
        """Who claimed the teacher code (or came through the built-in room's teacher link)."""
        return self.teacher_desk.teacher

    @property
    def teacher_code(self) -> str:
        """The code to claim with now (replaced when it was typed in public)."""
        return self.teacher_desk.code

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        await self.connector.join()
        now = time.time()
        s = self.settings
        self.writer.submit(
            MeetingOpened(
                self.meeting_id,
                s.platform,
                s.room,
                now,
                title=s.title,
                teacher=self.teacher_name,
                sample_period_s=s.sample_period_s,
            )
        )
        self.scoring.register(self.meeting_id, self._on_scores)
        self.state = "running"
        self.publish({"type": "running", "t": now})  # in the meeting (webhooks: bot.in_meeting)
        ticker = asyncio.create_task(self._tick_loop(), name=f"ticker {self.meeting_id}")
        self.notices.post()
        self._events_task = asyncio.create_task(
            self._read_events(), name=f"events {self.meeting_id}"
        )
        if self.stop_reason is not None:  # asked to leave while joining
            self._events_task.cancel()
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await self._events_task
        finally:
            self.state = "leaving"
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await self.notices.aclose()
            for student in self.students:
                await self._stop_analysis(student)
            self.teacher_desk.close()
            self.scoring.unregister(self.meeting_id)
            for label in self._persons:
                self._states.forget(label)
            self.writer.submit(MeetingClosed(self.meeting_id, time.time()))
            await self.connector.leave()
            self.state = "ended"
            self.publish({"type": "ended", "reason": self.stop_reason})
            logger.info("left meeting %s: %s", self.meeting_id, self.stop_reason)

    async def stop(self, reason: str = "asked to leave") -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        if self._events_task is not None:
            self._events_task.cancel()

    async def _read_events(self) -> None:
        async for event in self.connector.events():
            try:
                await self._handle(event)
            except Exception:  # one bad event must not end the class for everyone
                logger.exception("failed to handle %r", event)
        if self.stop_reason is None:
            self.stop_reason = "meeting ended"

    # -- meeting events --------------------------------------------------------------------

    def is_teacher(self, participant: Participant) -> bool:
        """The claimed teacher: bound by identity, whatever name anyone types."""
        return self.teacher_desk.is_teacher(participant)

    def _might_be_teacher(self, participant: Participant) -> bool:
        """Before anyone claimed, a name that looks like the teacher's is not analysed: it may be
        the teacher's own camera. This only ever holds analysis back; it grants nothing."""
        return not self.teacher_desk.binding.claimed and name_key(
            participant.display_name
        ) == name_key(self.teacher_name)

    async def _handle(self, event: MeetingEvent) -> None:
        if isinstance(event, ParticipantJoined):
            await self._joined(event.participant)
        elif isinstance(event, ParticipantLeft):
            await self._left(event.participant)
        elif isinstance(event, VideoTrackAdded):
            participant = event.participant
            student = self.students.get(participant)
            if student is None or participant.is_host or self.is_teacher(participant):
                return  # the teacher's own video is neither analysed nor stored
            student.source = event.source
            await self._start_analysis(student)
        elif isinstance(event, VideoTrackRemoved):
            found = self.students.get(event.participant)
            if found is not None:
                await self._stop_analysis(found)
                found.source = None
        elif isinstance(event, ChatReceived):
            await self.commands.handle(event)
        elif isinstance(event, ConnectionLost):
            logger.warning("lost the meeting: %s", event.reason)
            self._reclaim = self._reclaim or self.teacher is not None
        elif isinstance(event, ConnectionRestored):
            self.notices.post()  # people may have come in while the bot was away
            if self._reclaim:  # everyone is new to the bot now: the teacher included
                self._reclaim = False
                await self.say(RECLAIM)
            text = f"classpulse lost the meeting for {event.gap_s:.0f} s; nothing was analysed then"
            self.writer.submit(AlertRaised(self.meeting_id, event.t, "connection_gap", text, False))
            self.publish({"type": "gap", "gap_s": event.gap_s, "t": event.t})
        elif isinstance(event, MeetingEnded):
            self.stop_reason = self.stop_reason or f"meeting ended: {event.reason}"

    async def _joined(self, participant: Participant) -> None:
        self.notices.joined(participant)
        if participant.is_host:
            await self.teacher_desk.bind(participant)
            return
        student = self.students.add(participant, held=self._might_be_teacher(participant))
        if not student.held:
            self._store_joined(student)

    def _store_joined(self, student: Student) -> None:
        student.stored = True
        now = time.time()
        self.writer.submit(
            JoinedRow(self.meeting_id, student.label, now, platform_id=student.participant.id)
        )
        self.publish({"type": "joined", "student": student.label, "t": now})

    async def _left(self, participant: Participant) -> None:
        self.teacher_desk.left(participant)
        self.notices.left(participant)
        student = self.students.remove(participant)
        if student is None:
            return
        await self._stop_analysis(student)
        student.source = None
        self._drop_persons(student.label, forget_alerts=False)
        if student.stored:
            now = time.time()
            self.writer.submit(LeftRow(self.meeting_id, student.label, now))
            self.publish({"type": "left", "student": student.label, "t": now})

    async def _teacher_claimed(self, teacher: Participant) -> None:
        """A claim settles who the teacher is: their camera leaves the analysis (and what was
        stored of it goes), everyone held back for looking like the teacher is a student now."""
        student = self.students.get(teacher)
        if student is not None:
            if student.stored:
                await self.opt_out(student, publish=False)
            else:
                await self._stop_analysis(student)
            self.students.remove(teacher)
        for other in self.students:
            if other.held:
                other.held = False
                self._store_joined(other)
                await self._start_analysis(other)

    def _check_alone(self, t: float) -> None:
        if self.connector.participants():
            self._alone_since = None
        elif self._alone_since is None:
            self._alone_since = t
        elif t - self._alone_since >= self.settings.empty_grace_s:
            self.stop_reason = "everyone left"
            if self._events_task is not None:
                self._events_task.cancel()

    # -- chat ------------------------------------------------------------------------------

    async def say(self, text: str, to: Participant | None = None) -> bool:
        """Send a chat message; False (logged) when chat is down. Never raises."""
        try:
            await asyncio.wait_for(
                self.connector.send_chat(text, to=to), self.settings.chat_timeout_s
            )
            return True
        except (ChatUnavailableError, TimeoutError, ValueError) as error:
            # What was said (names, alerts) is for the teacher, not the log: DEBUG only.
            logger.warning("meeting %s: chat message not sent (%r)", self.meeting_id, error)
            logger.debug("the message not sent: %s", text[:200])
            return False

    async def whisper_teacher(self, text: str) -> bool:
        return await self.teacher_desk.whisper(text)

    def _notice_posted(self) -> None:
        self.writer.submit(ConsentRecorded(self.meeting_id, time.time(), ConsentKind.NOTICE))

    # -- what chat commands do --------------------------------------------------------------

    def calibrate(self, label: str) -> CalibrationOutcome:
        """The teacher says the person ``label`` (as the alerts name them) looks fine as they
        are: their last scores become their usual face (``engine.states.CalibrationSettings``)."""
        student = next((s for s in self.students if label in {s.label, *s.labels}), None)
        if student is None or student.opted_out:
            return CalibrationOutcome.UNKNOWN
        now = time.time()
        if not self._states.calibrate(label, now):
            return CalibrationOutcome.TOO_FEW
        self._alerts.calibrated(label)
        # A mark on the student's timeline, so the teacher reading it later sees why the
        # readings after it changed (stored with the alerts; the teacher's own word, delivered).
        text = f"marked fine by the teacher: {label}'s face from here on is their usual one"
        self.teacher_desk.record(now, CALIBRATED_KIND, text, delivered=True, student=label)
        logger.info("meeting %s: a person calibrated by the teacher", self.meeting_id)
        return CalibrationOutcome.DONE

    async def opt_out(self, student: Student, *, publish: bool = True) -> None:
        """Stops analysis of ``student`` now and deletes this meeting's rows about everything
        their camera showed (``Ana`` and ``Ana (2)``, a classmate sharing it)."""
        self.students.set_opted_out(student, True)
        await self._stop_analysis(student)
        self._drop_persons(student.label, forget_alerts=True)
        now = time.time()
        for label in sorted({student.label, *student.labels}):
            self.writer.submit(ConsentRecorded(self.meeting_id, now, ConsentKind.OPT_OUT, label))
        if publish:
            self.publish({"type": "opt_out", "student": student.label, "t": now})

    async def opt_in(self, student: Student) -> bool:
        if not student.opted_out:
            return False
        self.students.set_opted_out(student, False)
        self.writer.submit(
            ConsentRecorded(self.meeting_id, time.time(), ConsentKind.OPT_IN, student.label)
        )
        await self._start_analysis(student)
        return True

    def publish(self, event: dict[str, object]) -> None:
        self.live.publish(self.meeting_id, {"meeting_id": self.meeting_id, **event})
