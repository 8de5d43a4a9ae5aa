"""Who is in a Janus meeting: VideoRoom feeds and TextRoom users linked into people by name.

Janus keeps video (VideoRoom) and chat (TextRoom) in two unrelated plugins; the only thing that
ties a student's camera to their chat user is the display name they typed into both (the Janus
demos do the same). The roster links a feed and a chat user with the same normalised name into one
:class:`Participant`, so the session sees one person whose video and chat belong together. Two
people with the same name are kept apart as long as each of them has only one of each.

Pure and synchronous: every method returns what changed, the connector turns that into events.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from bot.meetings.protocol import Participant, normalize_display_name


@dataclass(slots=True)
class _Person:
    participant: Participant
    feed_id: int | None = None
    chat_user: str | None = None


@dataclass(frozen=True, slots=True)
class RosterChange:
    """What one roster update did: who arrived, who is gone (empty when nothing changed)."""

    joined: tuple[Participant, ...] = ()
    left: tuple[Participant, ...] = ()


class Roster:
    """The people present, keyed by connector-made ids ``p1``, ``p2``, … (never reused)."""

    def __init__(self, id_prefix: str = "p") -> None:
        self._ids = (f"{id_prefix}{n}" for n in itertools.count(1))
        self._people: dict[str, _Person] = {}
        self._by_feed: dict[int, str] = {}
        self._by_chat: dict[str, str] = {}

    def participants(self) -> tuple[Participant, ...]:
        return tuple(person.participant for person in self._people.values())

    def get(self, participant_id: str) -> Participant | None:
        person = self._people.get(participant_id)
        return person.participant if person else None

    def by_feed(self, feed_id: int) -> Participant | None:
        key = self._by_feed.get(feed_id)
        return self._people[key].participant if key else None

    def by_chat_user(self, username: str) -> Participant | None:
        key = self._by_chat.get(username)
        return self._people[key].participant if key else None

    def chat_user_of(self, participant_id: str) -> str | None:
        person = self._people.get(participant_id)
        return person.chat_user if person else None

    def feed_of(self, participant_id: str) -> int | None:
        person = self._people.get(participant_id)
        return person.feed_id if person else None

    def add_feed(self, feed_id: int, display: object) -> RosterChange:
        """A VideoRoom participant is present (publishing or, with ``notify_joining``, not)."""
        if feed_id in self._by_feed:
            return RosterChange()
        name = normalize_display_name(display, fallback=f"participant {feed_id}")
        person = self._find(name, lambda p: p.feed_id is None)
        joined: tuple[Participant, ...] = ()
        if person is None:
            person = self._new(name)
            joined = (person.participant,)
        person.feed_id = feed_id
        self._by_feed[feed_id] = person.participant.id
        return RosterChange(joined=joined)

    def remove_feed(self, feed_id: int) -> RosterChange:
        key = self._by_feed.pop(feed_id, None)
        if key is None:
            return RosterChange()
        person = self._people[key]
        person.feed_id = None
        return self._drop_if_absent(person)

    def add_chat_user(self, username: str, display: object) -> RosterChange:
        if username in self._by_chat:
            return RosterChange()
        name = normalize_display_name(display, fallback=normalize_display_name(username))
        person = self._find(name, lambda p: p.chat_user is None)
        joined: tuple[Participant, ...] = ()
        if person is None:
            person = self._new(name)
            joined = (person.participant,)
        person.chat_user = username
        self._by_chat[username] = person.participant.id
        return RosterChange(joined=joined)

    def remove_chat_user(self, username: str) -> RosterChange:
        key = self._by_chat.pop(username, None)
        if key is None:
            return RosterChange()
        person = self._people[key]
        person.chat_user = None
        return self._drop_if_absent(person)

    def clear(self) -> RosterChange:
        """Everyone is gone (connection lost, bot leaving)."""
        left = self.participants()
        self._people.clear()
        self._by_feed.clear()
        self._by_chat.clear()
        return RosterChange(left=left)

    def _find(self, name: str, free: Callable[[_Person], bool]) -> _Person | None:
        for person in self._people.values():
            if person.participant.display_name == name and free(person):
                return person
        return None

    def _new(self, name: str) -> _Person:
        person = _Person(Participant(next(self._ids), name))
        self._people[person.participant.id] = person
        return person

    def _drop_if_absent(self, person: _Person) -> RosterChange:
        if person.feed_id is None and person.chat_user is None:
            del self._people[person.participant.id]
            return RosterChange(left=(person.participant,))
        return RosterChange()
