"""classpulse storage: the teacher's history in SQLite (default) or PostgreSQL.

One small API::

    storage = Storage.open()              # $CLASSPULSE_DATABASE_URL or the per-user SQLite file,
                                          # upgraded to the newest schema
    writer = storage.writer()             # the one writer: writer.submit(Sample(...)) never waits
    storage.meeting_summary(meeting_id)   # reads (call them from a thread in async code)
    storage.purge_older_than(timedelta(days=180)); storage.forget_student("Ana")

Imports nothing of ``bot/`` and only types of ``engine/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from storage import coverage, lanes, lookup, queries, retention, rooms
from storage.coverage import ClassCoverage, CoverageBucket
from storage.db import (
    DATABASE_URL_ENV,
    create_engine_for,
    database_url_from_env,
    default_database_path,
    is_sqlite,
    make_session_factory,
    parse_database_url,
    sqlite_path,
    upgrade_database,
)
from storage.export import export_to_path, to_records, write_csv, write_json
from storage.results import (
    AlertInfo,
    ForgetResult,
    LaneBucket,
    MeetingInfo,
    MeetingSummary,
    PurgeResult,
    StudentLane,
    StudentMeeting,
    StudentSummary,
    TimelineBucket,
    UnknownMeetingError,
    UnknownStudentError,
)
from storage.rooms import StoredRoom
from storage.rows import (
    AlertRaised,
    ConsentKind,
    ConsentRecorded,
    MeetingClosed,
    MeetingOpened,
    ParticipantJoined,
    ParticipantLeft,
    Row,
    Sample,
    StateChanged,
    new_meeting_id,
)
from storage.writer import Writer, WriterStats

T = TypeVar("T")

__all__ = [
    "DATABASE_URL_ENV",
    "AlertInfo",
    "AlertRaised",
    "ClassCoverage",
    "ConsentKind",
    "ConsentRecorded",
    "CoverageBucket",
    "ForgetResult",
    "LaneBucket",
    "MeetingClosed",
    "MeetingInfo",
    "MeetingOpened",
    "MeetingSummary",
    "ParticipantJoined",
    "ParticipantLeft",
    "PurgeResult",
    "Row",
    "Sample",
    "StateChanged",
    "Storage",
    "StoredRoom",
    "StudentLane",
    "StudentMeeting",
    "StudentSummary",
    "TimelineBucket",
    "UnknownMeetingError",
    "UnknownStudentError",
    "Writer",
    "WriterStats",
    "database_url_from_env",
    "default_database_path",
    "export_to_path",
    "new_meeting_id",
    "parse_database_url",
    "to_records",
    "write_csv",
    "write_json",
]


class Storage:
    """An open database: reads, the one writer, retention. Thread-safe; close it when done."""

    def __init__(self, url: URL, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        self._sessions: sessionmaker[Session] = make_session_factory(engine)
        self._maintenance_engine: Engine | None = None

    @classmethod
    def open(
        cls,
        url: str | URL | None = None,
        *,
        upgrade: bool = True,
        environ: Mapping[str, str] | None = None,
    ) -> Storage:
        """Opens ``url`` (default: ``$CLASSPULSE_DATABASE_URL``, else SQLite in the per-user data
        dir) and, unless ``upgrade=False``, migrates it to the newest schema first."""
        parsed = database_url_from_env(environ) if url is None else parse_database_url(url)
        if is_sqlite(parsed) and sqlite_path(parsed) is None:
            raise ValueError(
                "Expected a SQLite file: the writer and the readers use separate connections, "
                "which cannot share an in-memory database. Received: "
                f"{parsed.render_as_string(hide_password=True)!r}"
            )
        engine = create_engine_for(parsed)
        try:
            if upgrade:
                upgrade_database(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(parsed, engine)

    def close(self) -> None:
        self.engine.dispose()
        if self._maintenance_engine is not None:
            self._maintenance_engine.dispose()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Storage({self.url.render_as_string(hide_password=True)!r})"

    # -- writing ----------------------------------------------------------------------------

    def writer(self, *, busy_timeout_s: float = 1.0, **options: Any) -> Writer:
        """A started writer on its own connection; ``options`` go to ``Writer`` (batch size,
        delay, buffer bound). Keep one per process and ``close()`` it on shutdown."""
        engine = create_engine_for(self.url, writes=True, busy_timeout_s=busy_timeout_s)
        return Writer(engine, **options).start()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read session for queries beyond the helpers below (``storage.queries``)."""
        with self._sessions() as session:
            yield session

    # -- reading ----------------------------------------------------------------------------

    def meetings(
        self,
        *,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
        teacher: str | None = None,
        room: str | None = None,
        platform: str | None = None,
    ) -> list[MeetingInfo]:
        """Meetings that started in ``[since, until)``, oldest first."""
        with self._sessions() as session:
            return queries.list_meetings(
                session, since=since, until=until, teacher=teacher, room=room, platform=platform
            )

    def find_meeting_id(self, text: str) -> str:
        """The stored meeting id ``text`` names: the id, or a unique prefix of at least 6 hex
        digits (``UnknownMeetingError`` otherwise, saying how many matched)."""
        with self._sessions() as session:
            return lookup.resolve_meeting_id(session, text)

    def find_student(self, name: str) -> str:
        """The stored display name ``name`` refers to: exact (NFC), else case-insensitive
        (``UnknownStudentError`` otherwise, with the closest names)."""
        with self._sessions() as session:
            return lookup.resolve_display_name(session, name)

    def meeting(self, meeting_id: str) -> MeetingInfo:
        with self._sessions() as session:
            return queries.get_meeting(session, meeting_id)

    def meeting_summary(self, meeting_id: str) -> MeetingSummary:
        with self._sessions() as session:
            return queries.meeting_summary(session, meeting_id)

    def class_timeline(self, meeting_id: str, bucket_s: float = 10.0) -> list[TimelineBucket]:
        with self._sessions() as session:
            return queries.class_timeline(session, meeting_id, bucket_s)

    def student_history(
        self,
        display_name: str,
        *,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
    ) -> list[StudentMeeting]:
        with self._sessions() as session:
            return queries.student_history(session, display_name, since=since, until=until)

    def student_lanes(self, meeting_id: str, bucket_s: float = 10.0) -> list[StudentLane]:
        """Each participant's own bucketed timeline (the dashboard's heat strips)."""
        with self._sessions() as session:
            return lanes.student_lanes(session, meeting_id, bucket_s)

    def alerts(self, meeting_id: str) -> list[AlertInfo]:
        with self._sessions() as session:
            return queries.meeting_alerts(session, meeting_id)

    def class_coverage(self, meeting_id: str, bucket_s: float = 10.0) -> ClassCoverage:
        """Students visible out of those present, per bucket and on average (the report)."""
        with self._sessions() as session:
            return coverage.class_coverage(session, meeting_id, bucket_s)

    # -- rooms of serve ---------------------------------------------------------------------

    def add_room(self, room: StoredRoom) -> None:
        """Stores an opened room (``ValueError`` for a name used before)."""
        self._maintain(lambda session: rooms.add_room(session, room), dry_run=False)

    def close_room(self, name: str, closed_at: float) -> bool:
        """Marks the room closed; False when no open room has that name."""
        return self._maintain(lambda session: rooms.close_room(session, name, closed_at), False)

    def open_rooms(self) -> list[StoredRoom]:
        with self._sessions() as session:
            return rooms.open_rooms(session)

    # -- deleting ---------------------------------------------------------------------------

    def purge_older_than(
        self, age: timedelta | float, *, now: datetime | None = None, dry_run: bool = False
    ) -> PurgeResult:
        """Deletes meetings that ended more than ``age`` (a timedelta or seconds) ago; with
        ``dry_run`` only says what it would delete."""
        return self._maintain(
            lambda session: retention.purge_older_than(session, age, now=now), dry_run
        )

    def forget_student(self, display_name: str, *, dry_run: bool = False) -> ForgetResult:
        """Deletes every row about ``display_name`` (and the other faces of that camera,
        ``Name (2)`` …) in every meeting; with ``dry_run`` only says what it would delete."""
        return self._maintain(
            lambda session: retention.forget_student(session, display_name), dry_run
        )

    def _maintain(self, change: Callable[[Session], T], dry_run: bool) -> T:
        with self._write_session() as session:
            transaction = session.begin()
            try:
                result = change(session)
            except BaseException:
                transaction.rollback()
                raise
            if dry_run:
                transaction.rollback()
            else:
                transaction.commit()
            return result

    def _write_session(self) -> Session:
        if self._maintenance_engine is None:
            self._maintenance_engine = create_engine_for(self.url, writes=True)
        return Session(self._maintenance_engine, expire_on_commit=False)
