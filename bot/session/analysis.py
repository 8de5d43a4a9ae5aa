"""The analysis half of a meeting session: frames → faces → scores → states, the 1 Hz tick that
turns them into samples, state changes and alerts, and the teacher's ``!status`` line.

Crops, absences, scores and the no-face rule go through the engine's ``PersonStates``, the path
``classpulse analyze`` runs too; this module adds the people (labels, owners, opt-outs), the
attention windows and what the tick writes, publishes and alerts.

Attention (head direction, eyes) rides along on each face crop when the face stage reads
landmarks: each person's ``AttentionWindow`` gets every reading. In the ``attention`` mode no crop
goes to the emotion model: a person's state is ``present`` while a face is in view (``no_face``
otherwise) and only attention alerts are raised.

A base of ``MeetingSession`` (which owns the people, the chat and the lifecycle); kept apart so
each half reads on its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field

from bot.alerts import AlertPolicy
from bot.analysis import ParticipantAnalysis, RemoteParticipantAnalysis
from bot.meetings.remote_video import RemoteVideo
from bot.session.settings import ScoringHubLike, SessionSettings
from bot.session.teacher import TeacherDesk
from bot.students import Student, StudentRoster
from engine.attention import AttentionSummary, AttentionWindow
from engine.faces import FaceDetector
from engine.frame_path import PersonStates
from engine.types import EngagementState, FaceCrop, Scores, StateChange
from storage import AlertRaised, Sample, StateChanged, Writer

logger = logging.getLogger(__name__)


@dataclass
class _Person:
    """One analysed face: the student, or a classmate sharing their camera (``Name (2)``)."""

    owner: str
    scores: Scores | None = None
    reported: EngagementState | None = None
    since: float = 0.0
    attention: AttentionWindow = field(default_factory=AttentionWindow)
    #: The attention of the last sample (``None``: no reading then).
    last_attention: AttentionSummary | None = None
    #: Seconds looking away / with the eyes closed without a break, at the last tick.
    looking_away_s: float = 0.0
    eyes_closed_s: float = 0.0
    #: The state tracker's last change (smoothing and hysteresis moved the state at its scores'
    #: frame time): a state the tick reports is stored at that time, with its confidence.
    change: StateChange | None = None
    #: When the face came back after the no-face timeout (the frame time of that crop).
    face_since: float | None = None


@dataclass(frozen=True)
class Coverage:
    """How many of the present students show a usable face now: ``12 of 15 visible``.

    ``total`` counts every present student who has not opted out (camera on or off); a student
    held back for looking like the teacher before a claim is not counted, as they may be the
    teacher. ``visible`` counts those whose camera is analysed and shows a face now (any face on
    it: a classmate sharing the camera counts with its owner); ``no_face`` and camera off do not.
    """

    visible: int
    total: int

    def __str__(self) -> str:
        return f"{self.visible} of {self.total} visible"


class ClassAnalysis:
    """What ``MeetingSession`` analyses; its attributes are set by the session."""

    settings: SessionSettings
    writer: Writer
    scoring: ScoringHubLike
    detector: FaceDetector
    executor: Executor
    meeting_id: str
    paused: bool
    num_alerts: int
    students: StudentRoster
    teacher_desk: TeacherDesk
    _persons: dict[str, _Person]
    #: Crops → scores → smoothed states of every person, and the no-face rule.
    _states: PersonStates
    _alerts: AlertPolicy
    #: Frames analysed (with or without a face) since the session started, all students.
    num_frames_analysed: int

    def publish(self, event: dict[str, object]) -> None:
        raise NotImplementedError

    def _check_alone(self, t: float) -> None:
        raise NotImplementedError

    # -- analysis --------------------------------------------------------------------------

    async def _start_analysis(self, student: Student) -> None:
        if (
            student.source is None
            or student.opted_out
            or student.held
            or student.analysis is not None
        ):
            return
        fps = self.settings.analysis_fps
        if isinstance(student.source, RemoteVideo):
            student.source.on_gap = lambda started, ended: self._on_gap(student, started, ended)
            student.analysis = RemoteParticipantAnalysis(
                student.label,
                student.source,
                self._on_crop,
                self._on_absent,
                fps=fps,
                on_frame=self._on_frame,
                stage=self.settings.face_stage,
            )
        else:
            student.analysis = ParticipantAnalysis(
                student.label,
                student.source,
                self.detector,
                self.executor,
                self._on_crop,
                self._on_absent,
                fps=fps,
                on_frame=self._on_frame,
            )
        student.analysis.paused = self.paused
        self._person(student.label, student.label)

    def _person(self, label: str, owner: str) -> _Person:
        found = self._persons.get(label)
        if found is None:
            window = AttentionWindow(self.settings.alerts.attention)
            found = self._persons[label] = _Person(owner, attention=window)
        return found

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
            self._states.forget(label)
            if forget_alerts:
                self._alerts.forget(label)
            else:
                self._alerts.update(label, EngagementState.NO_FACE, now)

    def _on_frame(self, _t: float) -> None:
        self.num_frames_analysed += 1

    def _on_gap(self, student: Student, started: float, ended: float) -> None:
        """A media worker died and was restarted: say so on the record, like a connection gap."""
        text = f"analysis of one camera stopped for {ended - started:.1f} s (media worker restart)"
        logger.warning("meeting %s: %s", self.meeting_id, text)
        if student.stored and not student.opted_out:
            self.writer.submit(AlertRaised(self.meeting_id, started, "analysis_gap", text, False))
        self.publish({"type": "gap", "gap_s": ended - started, "t": ended})

    def _on_crop(self, owner: str, label: str, crop: FaceCrop) -> None:
        student = self.students.by_label(owner)
        if self.paused or student is None or student.opted_out or student.analysis is None:
            return
        person = self._person(label, owner)
        student.labels.add(label)
        person.attention.push(crop.t, crop.attention)
        seen = self._states.last_face_t(label)
        if seen is None or crop.t - seen > self._states.face_timeout_s:
            person.face_since = crop.t
        self._states.face(label, crop)  # scored unless the mode reads no emotions

    def _on_absent(self, owner: str, label: str, t: float) -> None:
        person = self._persons.get(label)
        if person is not None:
            person.change = self._states.absent(label, t) or person.change

    def _on_scores(self, label: str, scores: Scores) -> None:
        person = self._persons.get(label)
        if person is None or self.paused:
            return  # opted out, left, or paused while the frame was in flight: discard
        person.scores = scores
        change = self._states.scores(
            Scores(label, scores.t, scores.interested, scores.bored, scores.confused)
        )
        person.change = change or person.change

    # -- the 1 Hz tick: samples, state changes, alerts, leaving when alone -------------------

    async def _tick_loop(self) -> None:
        period = self.settings.sample_period_s
        while True:
            await asyncio.sleep(period - (time.time() % period))
            try:
                await self._tick(time.time())
            except Exception:
                logger.exception("tick failed in meeting %s", self.meeting_id)

    async def _tick(self, t: float) -> None:
        if not self.paused:
            for label, person in list(self._persons.items()):
                student = self.students.by_label(person.owner)
                if student is None or student.opted_out or student.analysis is None:
                    continue
                state = self._states.state(label, t)
                if state != person.reported:
                    when, confidence = self._changed_at(label, person, state, t)
                    self.writer.submit(
                        StateChanged(
                            self.meeting_id, label, when, state, person.reported, confidence
                        )
                    )
                    person.reported, person.since = state, when
                    self.publish(
                        {
                            "type": "state",
                            "student": label,
                            "state": state.value,
                            "t": when,
                            "confidence": confidence,
                        }
                    )
                face = state != EngagementState.NO_FACE
                scores = person.scores if face and self.settings.reads_emotions else None
                seen = self._attention(label, person, face, t)
                self.writer.submit(
                    Sample(
                        self.meeting_id,
                        label,
                        t,
                        state,
                        face,
                        p_interested=scores.interested if scores else None,
                        p_bored=scores.bored if scores else None,
                        p_confused=scores.confused if scores else None,
                        yaw=_degrees(seen.yaw_deg) if seen else None,
                        pitch=_degrees(seen.pitch_deg) if seen else None,
                        eyes_open=seen.eyes_open if seen else None,
                        looking_away=seen.looking_away if seen else None,
                    )
                )
                self.publish(
                    {
                        "type": "sample",
                        "student": label,
                        "state": state.value,
                        "t": t,
                        "p": list(scores.as_tuple()) if scores else None,
                        "attention": _attention_event(person, seen, t),
                    }
                )
                self._alerts.update(label, state, t)
                self._alerts.attention(label, person.looking_away_s, person.eyes_closed_s)
            for alert in self._alerts.due(t):
                self.num_alerts += 1
                await self.teacher_desk.send_alert(alert)
            coverage = self.coverage(t)
            self.publish(
                {"type": "coverage", "visible": coverage.visible, "total": coverage.total, "t": t}
            )
        self._check_alone(t)

    def _changed_at(
        self, label: str, person: _Person, state: EngagementState, t: float
    ) -> tuple[float, float | None]:
        """When ``state`` (new at the tick ``t``) began, and the smoothed probability it began
        with (``None`` when no model judged it): the tracker's change for it when it made one
        since the last report; for ``no_face``, the moment the no-face rule's timeout ran out
        after the last face; otherwise the face's return. Never before the last report."""
        change, seen = person.change, self._states.last_face_t(label)
        when, confidence = t, None
        if change is not None and change.state == state and change.t >= person.since:
            when = change.t
            confidence = None if state == EngagementState.NO_FACE else change.confidence
        elif state == EngagementState.NO_FACE and seen is not None:
            when = seen + self._states.face_timeout_s
        elif state != EngagementState.NO_FACE and person.face_since is not None:
            when = person.face_since  # the face is back (its smoothed state unchanged)
        return max(person.since, min(when, t)), confidence

    def _attention(
        self, label: str, person: _Person, face: bool, t: float
    ) -> AttentionSummary | None:
        """The person's attention over the last sample period; updates their runs."""
        at = self._states.last_face_t(label)
        if not face or at is None:
            person.last_attention, person.looking_away_s, person.eyes_closed_s = None, 0.0, 0.0
            return None
        # Runs are read at the newest frame's time: the tick must not end them for the few
        # hundred ms a frame takes from the camera to here.
        person.looking_away_s = person.attention.looking_away_for(at)
        person.eyes_closed_s = person.attention.eyes_closed_for(at)
        person.last_attention = person.attention.summary(t - self.settings.sample_period_s, t)
        return person.last_attention

    def coverage(self, t: float | None = None) -> Coverage:
        """Students with a usable face at ``t`` (now) out of those counted; see ``Coverage``."""
        t = time.time() if t is None else t
        seen = {
            person.owner
            for label, person in self._persons.items()
            if self._states.state(label, t) != EngagementState.NO_FACE
        }
        counted = [s for s in self.students if not s.opted_out and not s.held]
        visible = sum(1 for s in counted if s.analysis is not None and s.label in seen)
        return Coverage(visible, len(counted))

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        for student in self.students:
            if student.analysis is not None:
                student.analysis.paused = paused

    def status_text(self) -> str:
        """One chat line: how many students are visible ("12 of 15 students visible"), every
        analysed student's state, how long for the worrying ones."""
        now = time.time()
        parts = []
        away = closed = 0
        for label, person in sorted(self._persons.items()):
            student = self.students.by_label(person.owner)
            if student is None or student.opted_out:
                continue
            state = person.reported or EngagementState.NO_FACE
            held = f" ({int(now - person.since)} s)" if state in ("confused", "bored") else ""
            if state != EngagementState.NO_FACE and person.looking_away_s > 0:
                away += 1
                held += f", looking away ({int(person.looking_away_s)} s)"
            if state != EngagementState.NO_FACE and person.eyes_closed_s > 0:
                closed += 1
                held += f", eyes closed ({int(person.eyes_closed_s)} s)"
            parts.append(f"{label}: {state.value.replace('_', ' ')}{held}")
        attention = f", {away} looking away, {closed} eyes closed" if away or closed else ""
        if self.paused:  # no frames are read: who is visible is not known
            head, counted, paused = f"{len(parts)} students", "", " Analysis is paused."
        else:
            coverage = self.coverage(now)
            head = f"{coverage.visible} of {coverage.total} students visible{attention}"
            counted, paused = (f" ({coverage})" if coverage.total else ""), ""
        if not parts:
            return f"classpulse: no student is being analysed right now{counted}.{paused}"
        return (
            f"classpulse: {head} — "
            + ", ".join(parts)
            + (f". Alerts so far: {self.num_alerts}.{paused}")
        )


def _degrees(value: float) -> float:
    """Head angles as stored: within [-180, 180] degrees."""
    return max(-180.0, min(180.0, value))


def _attention_event(
    person: _Person, seen: AttentionSummary | None, t: float
) -> dict[str, object] | None:
    """The live feed's view of a sample's attention (``None`` without a reading)."""
    if seen is None:
        return None
    return {
        "yaw": round(seen.yaw_deg, 1),
        "pitch": round(seen.pitch_deg, 1),
        "eyes_open": seen.eyes_open,
        "looking_away": seen.looking_away,
        "looking_away_s": round(person.looking_away_s, 1),
        "eyes_closed_s": round(person.eyes_closed_s, 1),
        "perclos": person.attention.perclos(t),
    }
