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
from dataclasses import dataclass

from bot.alerts import AlertPolicy
from bot.analysis import ParticipantAnalysis
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
from bot.session_commands import ChatCommands
from bot.session_notice import NoticeBoard
from bot.session_settings import NOTICE, ScoringHubLike, SessionSettings
from bot.session_teacher import TeacherDesk
from bot.students import Student, StudentRoster
from bot.teacher import name_key
from engine.faces import FaceDetector
from engine.states import StateTracker
from engine.types import EngagementState, FaceCrop, PersonAbsent, Scores
from storage import (
    AlertRaised,
    ConsentKind,
    ConsentRecorded,
    MeetingClosed,
    MeetingOpened,
    Sample,
    StateChanged,
    Writer,
    new_meeting_id,
)
from storage import ParticipantJoined as JoinedRow
from storage import ParticipantLeft as LeftRow

logger = logging.getLogger(__name__)

__all__ = ["NOTICE", "MeetingSession", "SessionSettings"]


@dataclass
class _Person:
    """One analysed face: the student, or a classmate sharing their camera (``Name (2)``)."""

    owner: str
    last_face_t: float | None = None
    scores: Scores | None = None
    reported: EngagementState | None = None
    since: float = 0.0


class MeetingSession:
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
    ) -> None:
        self.connector = connector
        self.settings = settings
        self.writer = writer
        self.scoring = scoring
        self.detector = detector
        self.executor = executor
        self.live = live or LiveFeed()
        self.meeting_id = new_meeting_id()
        self.teacher_name = normalize_display_name(settings.teacher)
        self.paused = False
        self.state = "starting"
        self.stop_reason: str | None = None
        self.num_alerts = 0
        self.students = StudentRoster()
        self.teacher_desk = TeacherDesk(self, settings.teacher_code, self._teacher_claimed)
        self.notices = NoticeBoard(self.say, self._notice_posted, self.meeting_id)
        self._persons: dict[str, _Person] = {}
        self._tracker = StateTracker(settings.states)
        self._alerts = AlertPolicy(settings.alerts)
        self._alone_since: float | None = None
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
                self.scoring.forget(self.meeting_id, label)
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
        elif isinstance(event, ConnectionRestored):
            self.notices.post()  # people may have come in while the bot was away
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

    # -- analysis --------------------------------------------------------------------------

    async def _start_analysis(self, student: Student) -> None:
        if (
            student.source is None
            or student.opted_out
            or student.held
            or student.analysis is not None
        ):
            return
        student.analysis = ParticipantAnalysis(
            student.label,
            student.source,
            self.detector,
            self.executor,
            self._on_crop,
            self._on_absent,
            fps=self.settings.analysis_fps,
        )
        student.analysis.paused = self.paused
        self._persons.setdefault(student.label, _Person(student.label))

    async def _stop_analysis(self, student: Student) -> None:
        if student.analysis is not None:
            await student.analysis.aclose()
            student.analysis = None

    def _drop_persons(self, owner: str, *, forget_alerts: bool) -> None:
        """Ends the analysis state of ``owner``'s persons. Only an opt-out forgets their alert
        history: a student who drops out and rejoins (a network blip, Janus restarting) keeps
        their cooldowns, or the teacher would hear the same alert again after every blip; their
        state just ends, so nothing is announced about them while they are away."""
        now = time.time()
        for label in [label for label, person in self._persons.items() if person.owner == owner]:
            del self._persons[label]
            self.scoring.forget(self.meeting_id, label)
            self._tracker.forget(label)
            if forget_alerts:
                self._alerts.forget(label)
            else:
                self._alerts.update(label, EngagementState.NO_FACE, now)

    def _on_crop(self, owner: str, label: str, crop: FaceCrop) -> None:
        student = self.students.by_label(owner)
        if self.paused or student is None or student.opted_out or student.analysis is None:
            return
        person = self._persons.setdefault(label, _Person(owner))
        student.labels.add(label)
        person.last_face_t = crop.t
        self.scoring.submit(self.meeting_id, label, crop.t, crop.crop)

    def _on_absent(self, owner: str, label: str, t: float) -> None:
        if label in self._persons:
            self._tracker.absent(PersonAbsent(label, t, self._persons[label].last_face_t))

    def _on_scores(self, label: str, scores: Scores) -> None:
        person = self._persons.get(label)
        if person is None or self.paused:
            return  # opted out, left, or paused while the frame was in flight: discard
        person.scores = scores
        self._tracker.push(
            Scores(label, scores.t, scores.interested, scores.bored, scores.confused)
        )

    # -- the 1 Hz tick: samples, state changes, alerts, leaving when alone -------------------

    async def _tick_loop(self) -> None:
        period = self.settings.sample_period_s
        while True:
            await asyncio.sleep(period - (time.time() % period))
            try:
                await self._tick(time.time())
            except Exception:
                logger.exception("tick failed in meeting %s", self.meeting_id)

    def current_state(self, person: _Person, label: str, t: float) -> EngagementState:
        in_view = (
            person.last_face_t is not None
            and t - person.last_face_t <= self.settings.face_timeout_s
        )
        if not in_view:
            return EngagementState.NO_FACE
        return self._tracker.state(label) or EngagementState.NO_FACE

    async def _tick(self, t: float) -> None:
        if not self.paused:
            for label, person in list(self._persons.items()):
                student = self.students.by_label(person.owner)
                if student is None or student.opted_out or student.analysis is None:
                    continue
                state = self.current_state(person, label, t)
                if state != person.reported:
                    self.writer.submit(
                        StateChanged(self.meeting_id, label, t, state, person.reported)
                    )
                    person.reported, person.since = state, t
                    self.publish({"type": "state", "student": label, "state": state.value, "t": t})
                face = state != EngagementState.NO_FACE
                scores = person.scores if face else None
                self.writer.submit(
                    Sample(
                        self.meeting_id,
                        label,
                        t,
                        state,
                        face,
                        *(scores.as_tuple() if scores else (None, None, None)),
                    )
                )
                self.publish(
                    {
                        "type": "sample",
                        "student": label,
                        "state": state.value,
                        "t": t,
                        "p": list(scores.as_tuple()) if scores else None,
                    }
                )
                self._alerts.update(label, state, t)
            for alert in self._alerts.due(t):
                self.num_alerts += 1
                await self.teacher_desk.send_alert(alert)
        self._check_alone(t)

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

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        for student in self.students:
            if student.analysis is not None:
                student.analysis.paused = paused

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

    def status_text(self) -> str:
        """One chat line: every analysed student's state, how long for the worrying ones."""
        now = time.time()
        parts = []
        for label, person in sorted(self._persons.items()):
            student = self.students.by_label(person.owner)
            if student is None or student.opted_out:
                continue
            state = person.reported or EngagementState.NO_FACE
            held = f" ({int(now - person.since)} s)" if state in ("confused", "bored") else ""
            parts.append(f"{label}: {state.value.replace('_', ' ')}{held}")
        paused = " Analysis is paused." if self.paused else ""
        if not parts:
            return f"classpulse: no student is being analysed right now.{paused}"
        return (
            f"classpulse: {len(parts)} students — "
            + ", ".join(parts)
            + f". Alerts so far: {self.num_alerts}.{paused}"
        )

    def publish(self, event: dict[str, object]) -> None:
        self.live.publish(self.meeting_id, {"meeting_id": self.meeting_id, **event})
