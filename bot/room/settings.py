"""How the built-in room is sized and guarded: one frozen value, passed to ``setup_room``.

The figures are the scaling decision for the built-in room (see ``bot/room/__init__.py``): it is
the default for trying classpulse and for small classes, relaying every camera through this one
process, not a replacement for Janus.
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass

from bot.meetings.url import BUILTIN_ROOM_PATTERN as ROOM_NAME_PATTERN

__all__ = ["ROOM_NAME_PATTERN", "RoomSettings"]


@dataclass(frozen=True, slots=True)
class RoomSettings:
    """Limits of every room served by one app. Defaults measured on a 2-core machine."""

    #: Video tiles a student's browser receives (the teacher's first, then classmates in join
    #: order). Each tile is one VP8 encode on the server, so the cost grows with
    #: viewers × tiles, not with viewers²: a class of 12 costs 12 × 4 + 8 encodes, not 12 × 11.
    max_tiles_per_student: int = 4
    #: Video tiles the teacher's browser receives (students in join order).
    max_tiles_per_teacher: int = 8
    #: Relayed tiles are scaled to this size and frame rate before encoding: small tiles cost a
    #: fraction of a full-size encode, and the bot never sees them (it reads the original).
    tile_width: int = 320
    tile_height: int = 180
    tile_fps: float = 10.0
    #: People (browsers and simulated students; bots not counted) in one room at once.
    max_participants: int = 30
    #: Rooms one app serves at once.
    max_rooms: int = 20
    #: Joins accepted per room: a burst of ``join_burst``, refilled at ``joins_per_s``. A flood
    #: of sockets beyond it is closed with 4429; the people already in the room are not touched.
    join_burst: int = 20
    joins_per_s: float = 5.0
    #: Chat messages one socket may send: a burst, refilled per second; beyond it: closed.
    chat_burst: int = 20
    chat_per_s: float = 2.0
    #: Largest signalling message in bytes (an offer for 1 + 8 video m-lines is about 30 KB).
    max_message_bytes: int = 64 * 1024
    #: Messages queued for one socket that does not read them; beyond it the socket is closed.
    max_outgoing_messages: int = 256
    #: Seconds a new socket has to send its ``join``, and a joined one its ``offer``.
    join_timeout_s: float = 10.0
    offer_timeout_s: float = 20.0
    #: Seconds the server waits for the media connection to come up after its answer.
    connect_timeout_s: float = 30.0
    #: Server-side ICE host addresses. ``None``: aioice's choice (every non-loopback interface).
    #: aioice never offers 127.0.0.1, so a room served on loopback sets ``("127.0.0.1",)``
    #: (``for_host`` does it); see ``bot.room.ice``.
    ice_addresses: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("max_tiles_per_student", "max_tiles_per_teacher"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= 16:
                raise ValueError(f"Expected {name} from 0 to 16. Received: {value!r}")
        for name in ("tile_width", "tile_height"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 16 or value > 1920 or value % 2:
                raise ValueError(
                    f"Expected {name} as an even number of pixels from 16 to 1920. "
                    f"Received: {value!r}"
                )
        for name in (
            "max_participants",
            "max_rooms",
            "join_burst",
            "chat_burst",
            "max_message_bytes",
            "max_outgoing_messages",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"Expected {name} to be a positive whole number. Received: {value!r}"
                )
        for name in (
            "tile_fps",
            "joins_per_s",
            "chat_per_s",
            "join_timeout_s",
            "offer_timeout_s",
            "connect_timeout_s",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"Expected {name} to be a positive number. Received: {value!r}")
        if self.ice_addresses is not None:
            for address in self.ice_addresses:
                try:
                    ipaddress.ip_address(address)
                except ValueError as error:
                    raise ValueError(
                        f"Expected IP addresses in ice_addresses. Received: {address!r}"
                    ) from error

    @classmethod
    def for_host(cls, host: str, **changes: object) -> RoomSettings:
        """Settings for an app bound to ``host``: on a loopback address the media goes over
        127.0.0.1 too, so a class tried on one computer needs no network at all."""
        loopback = host == "localhost"
        with contextlib.suppress(ValueError):
            loopback = loopback or ipaddress.ip_address(host).is_loopback
        if loopback and "ice_addresses" not in changes:
            changes["ice_addresses"] = ("127.0.0.1",)
        return cls(**changes)  # type: ignore[arg-type]
