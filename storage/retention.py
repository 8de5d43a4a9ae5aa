"""Deleting on purpose: retention by age and forgetting one student everywhere.

Both delete parents and let ``ON DELETE CASCADE`` take the children, inside one transaction, so a
crash half-way leaves either everything or nothing.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from storage.models import Alert, ConsentEvent, Meeting, Participant, Sample, StateChange
from storage.queries import from_unix
from storage.results import ForgetResult, PurgeResult, UnknownStudentError


def purge_older_than(
    session: Session, age: timedelta | float, *, now: datetime | None = None
) -> PurgeResult:
    """Deletes every meeting that ended (or, never closed, started) more than ``age`` ago, with
    all its participants, samples, state changes, alerts and consent events."""
    age_s = age.total_seconds() if isinstance(age, timedelta) else age
    if isinstance(age_s, bool) or not isinstance(age_s, int | float) or not math.isfinite(age_s):
        raise ValueError(f"Expected an age as a timedelta or seconds. Received: {age!r}")
    if age_s < 0:
        raise ValueError(f"Expected an age >= 0. Received: {age!r}")
    now = now or datetime.now(UTC)
    cutoff = now.timestamp() - age_s
    old_meetings = select(Meeting.id).where(
        func.coalesce(Meeting.ended_at, Meeting.started_at) < cutoff
    )
    old_participants = select(Participant.id).where(Participant.meeting_id.in_(old_meetings))
    num_meetings = session.scalar(select(func.count()).select_from(old_meetings.subquery())) or 0
    num_participants = (
        session.scalar(select(func.count()).select_from(old_participants.subquery())) or 0
    )
    num_samples = (
        session.scalar(select(func.count()).where(Sample.participant_id.in_(old_participants))) or 0
    )
    session.execute(
        delete(Meeting).where(func.coalesce(Meeting.ended_at, Meeting.started_at) < cutoff),
        execution_options={"synchronize_session": False},
    )
    return PurgeResult(
        cutoff=from_unix(cutoff),
        num_meetings=int(num_meetings),
        num_participants=int(num_participants),
        num_samples=int(num_samples),
    )


#: What the bot appends to a name: `` #2`` for a second participant under the same name, `` (2)``
#: for a second face on one camera.
_SUFFIX = re.compile(r"( #([2-9]|[1-9][0-9]+))?( \(([2-9]|[1-9][0-9]+)\))?")


def forget_student(session: Session, display_name: str) -> ForgetResult:
    """Deletes every row about this display name in every meeting — and about the other faces
    seen on that student's camera (``Ana (2)``, …) — the participant rows and, through them,
    samples, state changes, per-student alerts and consent events."""
    if not isinstance(display_name, str) or not display_name.strip():
        raise ValueError(f"Expected a non-empty display name. Received: {display_name!r}")
    display_name = unicodedata.normalize("NFC", display_name)
    # "Ana (2)": a classmate seen on Ana's camera; "Ana #2": another participant called Ana.
    prefix = display_name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + " "
    candidates = session.execute(
        select(Participant.id, Participant.display_name).where(
            (Participant.display_name == display_name)
            | Participant.display_name.like(prefix + "%", escape="\\")
        )
    ).all()
    ids = [
        row[0]
        for row in candidates
        if row[1].startswith(display_name) and _SUFFIX.fullmatch(row[1][len(display_name) :])
    ]
    if not ids:
        raise UnknownStudentError(
            f"Expected the display name of a stored participant. Received: {display_name!r}"
        )

    def count(table: type[Sample] | type[StateChange] | type[Alert] | type[ConsentEvent]) -> int:
        return int(session.scalar(select(func.count()).where(table.participant_id.in_(ids))) or 0)

    counts = {
        "samples": count(Sample),
        "state_changes": count(StateChange),
        "alerts": count(Alert),
        "consent_events": count(ConsentEvent),
    }
    num_meetings = session.scalar(
        select(func.count(Participant.meeting_id.distinct())).where(Participant.id.in_(ids))
    )
    session.execute(
        delete(Participant).where(Participant.id.in_(ids)),
        execution_options={"synchronize_session": False},
    )
    return ForgetResult(
        display_name=display_name,
        num_meetings=int(num_meetings or 0),
        num_participants=len(ids),
        num_samples=counts["samples"],
        num_state_changes=counts["state_changes"],
        num_alerts=counts["alerts"],
        num_consent_events=counts["consent_events"],
    )
