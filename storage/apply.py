"""Turning a batch of rows into SQL inside one transaction: the synchronous core of the writer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from storage import models, rows
from storage.rows import ConsentKind, Row


class RejectedRow(Exception):
    """A row that can never be stored as it is (e.g. it names a meeting nobody opened)."""


#: Participants whose ids the writer keeps at most (past it, it looks them up again).
MAX_CACHED_PARTICIPANTS = 10_000


@dataclass
class WriteCache:
    """Ids the writer already looked up. Only valid while the transactions that made it committed:
    the writer clears it after any failed batch."""

    meetings: set[str] = field(default_factory=set)
    #: (meeting id, display name) → (participant id, opted out)
    participants: dict[tuple[str, str], tuple[int, bool]] = field(default_factory=dict)

    def clear(self) -> None:
        self.meetings.clear()
        self.participants.clear()

    def forget_meeting(self, meeting_id: str) -> None:
        """The meeting closed: its participants' ids are not needed any more."""
        for key in [key for key in self.participants if key[0] == meeting_id]:
            del self.participants[key]


@dataclass
class BatchOutcome:
    """What one batch did: rows stored, rows refused for good (with why), rows about opted-out
    participants that were discarded on purpose."""

    written: int = 0
    rejected: list[tuple[Row, str]] = field(default_factory=list)
    discarded: int = 0


def apply_batch(session: Session, batch: Sequence[Row], cache: WriteCache) -> BatchOutcome:
    """Writes ``batch`` in order inside the caller's transaction.

    Samples and state changes are collected and inserted with one executemany each; any other row
    first flushes them so that, for example, an opt-out also deletes samples that came before it
    in the same batch.
    """
    outcome = BatchOutcome()
    if len(cache.participants) > MAX_CACHED_PARTICIPANTS:
        cache.clear()  # names come from participants: a flood of them must not grow memory
    applier = _Applier(session, cache, outcome)
    for row in batch:
        try:
            applier.apply(row)
        except RejectedRow as error:
            outcome.rejected.append((row, str(error)))
    applier.flush_bulk()
    return outcome


class _Applier:
    def __init__(self, session: Session, cache: WriteCache, outcome: BatchOutcome) -> None:
        self.session = session
        self.cache = cache
        self.outcome = outcome
        self.samples: list[dict[str, Any]] = []
        self.state_changes: list[dict[str, Any]] = []

    def apply(self, row: Row) -> None:
        if isinstance(row, rows.Sample):
            self._sample(row)
            return
        if isinstance(row, rows.StateChanged):
            self._state_change(row)
            return
        self.flush_bulk()
        if isinstance(row, rows.MeetingOpened):
            self._meeting_opened(row)
        elif isinstance(row, rows.MeetingClosed):
            self._require_meeting(row.meeting_id)
            self.session.execute(
                update(models.Meeting)
                .where(models.Meeting.id == row.meeting_id)
                .values(ended_at=row.t)
            )
            self.cache.forget_meeting(row.meeting_id)
        elif isinstance(row, rows.ParticipantJoined):
            self._participant_joined(row)
        elif isinstance(row, rows.ParticipantLeft):
            participant_id, _ = self._participant(
                row.meeting_id, row.display_name, None, create=False
            )
            self.session.execute(
                update(models.Participant)
                .where(models.Participant.id == participant_id)
                .values(left_at=row.t)
            )
            self.cache.participants.pop((row.meeting_id, row.display_name), None)
        elif isinstance(row, rows.AlertRaised):
            self._alert(row)
            return
        elif isinstance(row, rows.ConsentRecorded):
            self._consent(row)
        else:
            raise RejectedRow(f"Expected a storage.rows row. Received: {type(row).__name__}")
        self.outcome.written += 1

    def flush_bulk(self) -> None:
        if self.samples:
            self.session.execute(insert(models.Sample), self.samples)
            self.outcome.written += len(self.samples)
            self.samples = []
        if self.state_changes:
            self.session.execute(insert(models.StateChange), self.state_changes)
            self.outcome.written += len(self.state_changes)
            self.state_changes = []

    # -- rows -------------------------------------------------------------------------------

    def _meeting_opened(self, row: rows.MeetingOpened) -> None:
        if row.meeting_id in self.cache.meetings or self._meeting_exists(row.meeting_id):
            # A bot restarted inside the same meeting: keep the first start, reopen it.
            self.session.execute(
                update(models.Meeting)
                .where(models.Meeting.id == row.meeting_id)
                .values(ended_at=None)
            )
        else:
            self.session.execute(
                insert(models.Meeting).values(
                    id=row.meeting_id,
                    platform=row.platform,
                    room=row.room,
                    title=row.title,
                    teacher=row.teacher,
                    started_at=row.t,
                    sample_period_s=row.sample_period_s,
                )
            )
        self.cache.meetings.add(row.meeting_id)

    def _participant_joined(self, row: rows.ParticipantJoined) -> None:
        key = (row.meeting_id, row.display_name)
        existed = key in self.cache.participants or self._lookup_participant(*key) is not None
        participant_id, _ = self._participant(
            row.meeting_id, row.display_name, row.t, create=True, platform_id=row.platform_id
        )
        if existed:
            values: dict[str, Any] = {"left_at": None}
            if row.platform_id is not None:
                values["platform_id"] = row.platform_id
            self.session.execute(
                update(models.Participant)
                .where(models.Participant.id == participant_id)
                .values(**values)
            )

    def _sample(self, row: rows.Sample) -> None:
        participant_id, opted_out = self._participant(row.meeting_id, row.display_name, row.t)
        if opted_out:
            self.outcome.discarded += 1
            return
        self.samples.append(
            {
                "participant_id": participant_id,
                "t": float(row.t),
                "p_interested": row.p_interested,
                "p_bored": row.p_bored,
                "p_confused": row.p_confused,
                "face_present": row.face_present,
                "state": row.state.value,
                "yaw": row.yaw,
                "pitch": row.pitch,
                "eyes_open": row.eyes_open,
                "looking_away": row.looking_away,
            }
        )

    def _state_change(self, row: rows.StateChanged) -> None:
        participant_id, opted_out = self._participant(row.meeting_id, row.display_name, row.t)
        if opted_out:
            self.outcome.discarded += 1
            return
        self.state_changes.append(
            {
                "participant_id": participant_id,
                "t": float(row.t),
                "from_state": None if row.from_state is None else row.from_state.value,
                "to_state": row.to_state.value,
                "confidence": row.confidence,
            }
        )

    def _alert(self, row: rows.AlertRaised) -> None:
        participant_id: int | None = None
        if row.display_name is not None:
            participant_id, opted_out = self._participant(row.meeting_id, row.display_name, row.t)
            if opted_out:
                self.outcome.discarded += 1
                return
        else:
            self._require_meeting(row.meeting_id)
        self.session.execute(
            insert(models.Alert).values(
                meeting_id=row.meeting_id,
                participant_id=participant_id,
                t=row.t,
                kind=row.kind,
                text=row.text,
                delivered=row.delivered,
            )
        )
        self.outcome.written += 1

    def _consent(self, row: rows.ConsentRecorded) -> None:
        participant_id: int | None = None
        if row.display_name is None:
            self._require_meeting(row.meeting_id)
        else:
            participant_id, _ = self._participant(row.meeting_id, row.display_name, row.t)
        if row.kind is ConsentKind.OPT_OUT and participant_id is not None:
            delete_participant_data(self.session, [participant_id])
            self._set_opted_out(row, participant_id, True)
        elif row.kind is ConsentKind.OPT_IN and participant_id is not None:
            self._set_opted_out(row, participant_id, False)
        self.session.execute(
            insert(models.ConsentEvent).values(
                meeting_id=row.meeting_id,
                participant_id=participant_id,
                t=row.t,
                kind=row.kind.value,
            )
        )

    def _set_opted_out(self, row: rows.ConsentRecorded, participant_id: int, value: bool) -> None:
        assert row.display_name is not None
        self.session.execute(
            update(models.Participant)
            .where(models.Participant.id == participant_id)
            .values(opted_out=value)
        )
        self.cache.participants[(row.meeting_id, row.display_name)] = (participant_id, value)

    # -- lookups ----------------------------------------------------------------------------

    def _require_meeting(self, meeting_id: str) -> None:
        if meeting_id in self.cache.meetings:
            return
        if not self._meeting_exists(meeting_id):
            raise RejectedRow(
                f"Expected a meeting opened with MeetingOpened first. Received: {meeting_id!r}"
            )
        self.cache.meetings.add(meeting_id)

    def _meeting_exists(self, meeting_id: str) -> bool:
        found = self.session.execute(
            select(models.Meeting.id).where(models.Meeting.id == meeting_id)
        ).first()
        return found is not None

    def _lookup_participant(self, meeting_id: str, display_name: str) -> tuple[int, bool] | None:
        found = self.session.execute(
            select(models.Participant.id, models.Participant.opted_out).where(
                models.Participant.meeting_id == meeting_id,
                models.Participant.display_name == display_name,
            )
        ).first()
        return None if found is None else (found[0], bool(found[1]))

    def _participant(
        self,
        meeting_id: str,
        display_name: str,
        t: float | None,
        *,
        create: bool = True,
        platform_id: str | None = None,
    ) -> tuple[int, bool]:
        """(id, opted out) of a participant; made on first sight so rows never wait for a join."""
        key = (meeting_id, display_name)
        cached = self.cache.participants.get(key)
        if cached is not None:
            return cached
        found = self._lookup_participant(meeting_id, display_name)
        if found is None:
            if not create or t is None:
                raise RejectedRow(
                    f"Expected a participant that joined meeting {meeting_id!r}. "
                    f"Received: {display_name!r}"
                )
            self._require_meeting(meeting_id)
            new_id = self.session.execute(
                insert(models.Participant)
                .values(
                    meeting_id=meeting_id,
                    display_name=display_name,
                    platform_id=platform_id,
                    joined_at=t,
                    opted_out=False,
                )
                .returning(models.Participant.id)
            ).scalar_one()
            found = (int(new_id), False)
        self.cache.participants[key] = found
        return found


def delete_participant_data(session: Session, participant_ids: Sequence[int]) -> dict[str, int]:
    """Deletes the samples, state changes and alerts about these participants; returns counts."""
    if not participant_ids:
        return {"samples": 0, "state_changes": 0, "alerts": 0}
    counts = {}
    for name, table in (
        ("samples", models.Sample),
        ("state_changes", models.StateChange),
        ("alerts", models.Alert),
    ):
        result = session.execute(
            delete(table).where(table.participant_id.in_(participant_ids)),
            execution_options={"synchronize_session": False},
        )
        counts[name] = int(getattr(result, "rowcount", 0) or 0)
    return counts
