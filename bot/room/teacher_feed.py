"""What only the teacher's page gets: each student's live state (the tile badges), the coverage
and the alerts, relayed from the bot session's live feed to the room's teacher sockets.

The room decides who receives them (sockets admitted with the teacher token), so a student's
page never gets a byte of it, whatever its script does. One relay task per room runs while a
teacher is present: it finds the room's bot (the bot manager knows which meeting it opened) and
follows that meeting's feed until the bot leaves, then looks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from bot.room.peer import Peer
from bot.room.room import Room

logger = logging.getLogger(__name__)

#: Seconds between looks for the room's bot while a teacher waits for it.
FIND_BOT_INTERVAL_S = 1.0
#: "Ana (2)": a second face on Ana's camera (``bot.students``); its badge goes on Ana's tile.
_EXTRA_FACE = re.compile(r"(.*) \((\d+)\)")

FindMeeting = Callable[[str], str | None]
Subscribe = Callable[[str], AsyncIterator[dict[str, Any]]]


def badge_message(
    member_id: str | None,
    student: str,
    state: str,
    t: float,
    *,
    looking_away: bool = False,
    eyes_closed: bool = False,
) -> dict[str, Any]:
    """A student's state now; ``id``: the room member whose tile shows them (``None``: unknown);
    ``looking_away`` / ``eyes_closed``: the head is turned away / the eyes are closed now (the
    landmark face stage's reading; always False without one)."""
    return {
        "type": "badge",
        "id": member_id,
        "student": student,
        "state": state,
        "t": t,
        "looking_away": looking_away,
        "eyes_closed": eyes_closed,
    }


def attention_flags(
    event: dict[str, Any], state: str, last: dict[str, Any] | None
) -> dict[str, bool]:
    """Looking away / eyes closed after ``event``: a sample says it with its ``attention``
    object (none: no reading, neither), a state change carries none and keeps the last flags;
    without a face there is neither. A run counts until it ends (``*_s`` > 0), as ``!status``
    counts it, so a blink-length break does not flicker the marker."""
    if state == "no_face":
        return {"looking_away": False, "eyes_closed": False}
    if event.get("type") != "sample":
        return {key: bool(last and last.get(key)) for key in ("looking_away", "eyes_closed")}
    reading = event.get("attention")
    if not isinstance(reading, dict):
        return {"looking_away": False, "eyes_closed": False}

    def seconds(key: str) -> float:
        value = reading.get(key)
        return float(value) if isinstance(value, int | float) else 0.0

    return {
        "looking_away": reading.get("looking_away") is True or seconds("looking_away_s") > 0,
        "eyes_closed": reading.get("eyes_open") is False or seconds("eyes_closed_s") > 0,
    }


def coverage_message(visible: int, total: int, t: float) -> dict[str, Any]:
    return {"type": "coverage", "visible": visible, "total": total, "t": t}


def alert_message(event: dict[str, Any]) -> dict[str, Any]:
    keys = ("kind", "student", "text", "t", "delivered")
    return {"type": "alert", **{key: event.get(key) for key in keys}}


class TeacherFeed:
    """The relay of one room. ``teacher_joined(peer)`` when a teacher socket is admitted."""

    def __init__(self, room: Room, find_meeting: FindMeeting, subscribe: Subscribe) -> None:
        self.room = room
        self.find_meeting = find_meeting
        self.subscribe = subscribe
        #: Label → the last badge sent, for a teacher who joins later.
        self.badges: dict[str, dict[str, Any]] = {}
        self.coverage: dict[str, Any] | None = None
        self.task: asyncio.Task[None] | None = None

    def teachers(self) -> list[Peer]:
        """The room's teacher sockets: the only recipients of this feed."""
        found = []
        for member in self.room.members():
            peer = self.room.peer(member.id)
            if peer is not None and member.role == "teacher":
                found.append(peer)
        return found

    def teacher_joined(self, peer: Peer) -> None:
        for message in [*self.badges.values(), *([self.coverage] if self.coverage else [])]:
            peer.outbox.send(message)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(), name=f"teacher feed {self.room.name}")

    async def aclose(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        while self.teachers() and not self.room.closed:
            meeting_id = self.find_meeting(self.room.name)
            if meeting_id is None:
                await asyncio.sleep(FIND_BOT_INTERVAL_S)
                continue
            events = self.subscribe(meeting_id)
            try:
                async for event in events:
                    if event.get("type") == "ended" or not self._relay(event):
                        break
            finally:
                await events.aclose()  # type: ignore[attr-defined]
            self.badges.clear()
            self.coverage = None
            await asyncio.sleep(FIND_BOT_INTERVAL_S)  # the bot that left may still be listed

    def _relay(self, event: dict[str, Any]) -> bool:
        """Sends what a teacher sees of ``event``; False once no teacher is left."""
        teachers = self.teachers()
        if not teachers or self.room.closed:
            return False
        kind = event.get("type")
        message: dict[str, Any] | None = None
        if kind in ("sample", "state") and isinstance(event.get("student"), str):
            label, state = event["student"], str(event.get("state"))
            last = self.badges.get(label)
            flags = attention_flags(event, state, last)
            if (
                last is None
                or last["state"] != state
                or any(last[k] != v for k, v in flags.items())
            ):
                member = self._member_of(label)
                message = badge_message(member, label, state, event.get("t", 0), **flags)
                self.badges[label] = message
        elif kind in ("left", "opt_out") and isinstance(event.get("student"), str):
            self.badges.pop(event["student"], None)
            message = badge_message(self._member_of(event["student"]), event["student"], "", 0)
        elif kind == "coverage":
            message = coverage_message(
                int(event.get("visible", 0)), int(event.get("total", 0)), event.get("t", 0)
            )
            if message == self.coverage:
                message = None
            else:
                self.coverage = message
        elif kind == "alert":
            message = alert_message(event)
        if message is not None:
            for peer in teachers:
                peer.outbox.send(message)
        return True

    def _member_of(self, label: str) -> str | None:
        """The student member whose camera shows ``label``: by name, then by the base name of
        an extra face. Names are unique in a room (the room adds " (2)" to a taken one)."""
        students = {m.display_name: m.id for m in self.room.members() if m.role == "student"}
        if label in students:
            return students[label]
        extra = _EXTRA_FACE.fullmatch(label)
        return students.get(extra.group(1)) if extra else None


class TeacherFeeds:
    """The relays of one app's rooms, made on demand."""

    def __init__(self, find_meeting: FindMeeting, subscribe: Subscribe) -> None:
        self.find_meeting = find_meeting
        self.subscribe = subscribe
        self._feeds: dict[str, TeacherFeed] = {}

    def teacher_joined(self, room: Room, peer: Peer) -> None:
        feed = self._feeds.get(room.name)
        if feed is None or feed.room is not room:
            feed = self._feeds[room.name] = TeacherFeed(room, self.find_meeting, self.subscribe)
        feed.teacher_joined(peer)

    async def aclose(self) -> None:
        for feed in list(self._feeds.values()):
            await feed.aclose()
        self._feeds.clear()
