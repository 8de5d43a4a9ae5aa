"""Who the teacher is: a secret code the inviter holds, claimed in a whisper, bound to one identity.

A display name is a label anyone can type, so it never grants anything. Whoever invites the bot
gets a teacher code (``classpulse join`` prints it, ``POST /api/bots`` returns it); the teacher
whispers ``!claim CODE`` to the bot and from then on the bot's alerts and the teacher-only
commands belong to that participant (its connector-made id, i.e. its platform identity: the
Janus chat user and camera, the built-in room's member), until they leave. A rejoin claims again
with the same code. A code typed in the public chat is spent: the bot replaces it.

Pure and synchronous: the session asks and carries out what the answers say.
"""

from __future__ import annotations

import hmac
import secrets
import time
import unicodedata
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from bot.meetings.protocol import Participant

#: Letters and digits that cannot be mistaken for each other when read aloud or typed (no 0/o,
#: 1/l/i): a code is read off a terminal or dashboard and typed into a meeting chat.
CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
#: Generated codes are two groups of four (``k7mq-x2pa``): 31⁸ ≈ 8.5 × 10¹¹ codes, against a
#: guesser held to a few tries a minute.
CODE_GROUPS = (4, 4)
MIN_CODE_CHARS = 8
MAX_CODE_CHARS = 64

T = TypeVar("T")


def new_teacher_code() -> str:
    """A fresh random code, easy to type: ``k7mq-x2pa``."""
    return "-".join("".join(secrets.choice(CODE_ALPHABET) for _ in range(n)) for n in CODE_GROUPS)


def code_key(text: str) -> str:
    """The form codes are compared in: case, spaces and dashes do not matter (``K7MQ X2PA``)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


def check_teacher_code(code: object) -> str:
    """A code given by the inviter, validated; returns it stripped."""
    if not isinstance(code, str):
        raise ValueError(f"Expected the teacher code as text. Received: {type(code).__name__}")
    key = code_key(code)
    if len(key) < MIN_CODE_CHARS or len(code.strip()) > MAX_CODE_CHARS:
        raise ValueError(
            f"Expected a teacher code of {MIN_CODE_CHARS} to {MAX_CODE_CHARS} characters, "
            f"at least {MIN_CODE_CHARS} of them letters or digits. "
            f"Received: {len(key)} letters or digits"
        )
    return code.strip()


def name_key(name: str) -> str:
    """How alike two display names look to a person: case, spaces, zero-width and compatibility
    characters ignored. Used only to hold back analysis of whoever *might* be the teacher, never
    to grant anything."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(
        ch for ch in folded if not ch.isspace() and unicodedata.category(ch)[0] not in "CZ"
    )


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"
    WRONG = "wrong"
    LIMITED = "limited"
    PUBLIC = "public"
    PUBLIC_LEAKED = "public_leaked"


class _Bucket:
    """``burst`` tries at once, refilled at ``per_s``."""

    def __init__(self, burst: int, per_s: float, clock: Callable[[], float]) -> None:
        self.burst, self.per_s, self._clock = burst, per_s, clock
        self._tokens, self._at = float(burst), clock()

    def available(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_s)
        self._at = now
        return self._tokens >= 1

    def take(self) -> None:
        self._tokens -= 1


class BoundedMap(Generic[T]):
    """A dict that forgets its oldest entries beyond ``max_entries`` (keys from participants)."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[str, T] = OrderedDict()

    def get(self, key: str) -> T | None:
        return self._items.get(key)

    def put(self, key: str, value: T) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def pop(self, key: str) -> T | None:
        return self._items.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True, slots=True)
class ClaimSettings:
    """Wrong codes: 3 at once per participant, then one every 20 s; the whole meeting gets 10
    at once, then one every 6 s — a guesser with many names gains nothing."""

    per_sender_burst: int = 3
    per_sender_per_s: float = 1 / 20
    meeting_burst: int = 10
    meeting_per_s: float = 1 / 6
    #: Alerts kept while no teacher is bound, delivered on the next claim (oldest dropped).
    max_pending_alerts: int = 20


class TeacherBinding(Generic[T]):
    """The meeting's teacher: the code, who claimed it, and the alerts waiting for them."""

    def __init__(
        self,
        code: str,
        settings: ClaimSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.code = check_teacher_code(code)
        self.settings = settings or ClaimSettings()
        self.teacher: Participant | None = None
        self._clock = clock
        self._senders: BoundedMap[_Bucket] = BoundedMap(256)
        self._meeting = _Bucket(self.settings.meeting_burst, self.settings.meeting_per_s, clock)
        self.pending: deque[T] = deque()
        self.num_wrong = 0
        self.num_replaced = 0

    @property
    def claimed(self) -> bool:
        return self.teacher is not None

    def is_teacher(self, participant: Participant) -> bool:
        return self.teacher is not None and participant.id == self.teacher.id

    def bind(self, participant: Participant) -> None:
        """The platform vouches for ``participant`` (the built-in room's teacher link)."""
        self.teacher = participant

    def release(self, participant: Participant) -> bool:
        """``participant`` left; True when it was the teacher (who must claim again)."""
        self._senders.pop(participant.id)
        if self.is_teacher(participant):
            self.teacher = None
            return True
        return False

    def claim(self, participant: Participant, text: str, *, whisper: bool) -> ClaimOutcome:
        """``text`` is what followed ``!claim``. A public claim never binds; when it carried the
        code, the code is replaced (everyone has read it)."""
        matches = hmac.compare_digest(code_key(text).encode(), code_key(self.code).encode())
        if not whisper:
            if matches:
                self.replace_code()
                return ClaimOutcome.PUBLIC_LEAKED
            return ClaimOutcome.PUBLIC
        sender = self._senders.get(participant.id)
        if sender is None:
            s = self.settings
            sender = _Bucket(s.per_sender_burst, s.per_sender_per_s, self._clock)
            self._senders.put(participant.id, sender)
        if not (sender.available() and self._meeting.available()):
            return ClaimOutcome.LIMITED
        if not matches:
            sender.take()
            self._meeting.take()
            self.num_wrong += 1
            return ClaimOutcome.WRONG
        self.teacher = participant
        return ClaimOutcome.CLAIMED

    def replace_code(self) -> str:
        self.code = new_teacher_code()
        self.num_replaced += 1
        return self.code

    def keep(self, item: T) -> T | None:
        """Keeps ``item`` for the next claim; returns the oldest item dropped to make room."""
        self.pending.append(item)
        if len(self.pending) > self.settings.max_pending_alerts:
            return self.pending.popleft()
        return None

    def take_pending(self) -> list[T]:
        items = list(self.pending)
        self.pending.clear()
        return items
