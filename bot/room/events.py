"""What a room tells its in-process members (bots): small frozen values, one callback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.room.peer import MemberInfo


@dataclass(frozen=True, slots=True)
class MemberJoined:
    member: MemberInfo


@dataclass(frozen=True, slots=True)
class MemberLeft:
    member: MemberInfo


@dataclass(frozen=True, slots=True)
class VideoStarted:
    """``member``'s camera is flowing; ``Room.subscribe_video`` gives its frames."""

    member: MemberInfo
    codec: str


@dataclass(frozen=True, slots=True)
class VideoStopped:
    member: MemberInfo


@dataclass(frozen=True, slots=True)
class ChatPosted:
    sender: MemberInfo
    text: str
    #: Id of the only recipient, or ``None`` for everyone.
    to: str | None
    #: Wall-clock seconds since the epoch.
    t: float


@dataclass(frozen=True, slots=True)
class RoomClosed:
    reason: str


RoomEvent = MemberJoined | MemberLeft | VideoStarted | VideoStopped | ChatPosted | RoomClosed
RoomListener = Callable[[RoomEvent], None]
