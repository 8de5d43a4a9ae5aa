"""Rooms of ``classpulse serve`` as stored: opened, listed on start, closed."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.models import NAME_LENGTH, ClassRoom


@dataclass(frozen=True, slots=True)
class StoredRoom:
    """An open room: what ``serve`` needs to open it again after a restart."""

    name: str
    title: str
    teacher_token: str = ""
    #: Unix seconds.
    created_at: float = 0.0


def add_room(session: Session, room: StoredRoom) -> None:
    """Stores a new open room; a name seen before (open or closed) is refused."""
    if not room.title or len(room.title) > NAME_LENGTH:
        raise ValueError(
            f"Expected a room title of 1 to {NAME_LENGTH} characters. "
            f"Received: {len(room.title)} characters"
        )
    if session.get(ClassRoom, room.name) is not None:
        raise ValueError(f"Expected a new room name. Received: {room.name!r}, which exists")
    session.add(
        ClassRoom(
            name=room.name,
            title=room.title,
            teacher_token=room.teacher_token,
            created_at=room.created_at,
        )
    )


def close_room(session: Session, name: str, closed_at: float) -> bool:
    """Marks an open room closed and forgets its teacher token; False when none was open."""
    result = session.execute(
        update(ClassRoom)
        .where(ClassRoom.name == name, ClassRoom.closed_at.is_(None))
        .values(closed_at=closed_at, teacher_token="")
    )
    return bool(getattr(result, "rowcount", 0))


def open_rooms(session: Session) -> list[StoredRoom]:
    """Open rooms, oldest first."""
    rows = session.scalars(
        select(ClassRoom).where(ClassRoom.closed_at.is_(None)).order_by(ClassRoom.created_at)
    )
    return [StoredRoom(r.name, r.title, r.teacher_token, r.created_at) for r in rows]
