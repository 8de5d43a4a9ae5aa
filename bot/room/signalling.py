"""The room's WebSocket (``/rooms/{name}/ws``): one socket per browser, strict, closed on abuse.

Sequence: ``join`` → ``welcome`` → ``offer`` → ``answer``; then ``camera`` and ``chat`` at will,
and the server pushes ``participants``, ``tiles`` and ``chat``. Whatever breaks the protocol —
malformed JSON, an unknown type, SDP garbage, an oversize or binary frame, a second join, a chat
flood, a join beyond the room's rate — closes *that* socket with a code and a reason
(``bot.room.messages``); nothing it sent reaches the room, and everyone else stays.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import WSCloseCode, WSMsgType, web

from bot.room.messages import (
    CLOSE_BAD_MESSAGE,
    CLOSE_INTERNAL,
    CLOSE_NO_ROOM,
    CLOSE_RATE_LIMITED,
    CLOSE_TIMEOUT,
    CLOSE_UNSUPPORTED,
    Camera,
    Chat,
    ClientMessage,
    Join,
    Offer,
    ProtocolViolation,
    answer_message,
    parse_client_message,
    welcome_message,
)
from bot.room.peer import Outbox, Peer
from bot.room.room import Room, RoomRegistry, TokenBucket
from bot.room.settings import RoomSettings
from bot.room.teacher_feed import TeacherFeeds
from bot.web.hosts import same_origin

logger = logging.getLogger(__name__)

#: Seconds between WebSocket pings; a browser that vanished is noticed within about twice this.
HEARTBEAT_S = 15.0


class RoomSocket(web.WebSocketResponse):
    """aiohttp closes an oversize frame with 1009 and no text; this adds the reason."""

    def __init__(self, max_message_bytes: int) -> None:
        super().__init__(heartbeat=HEARTBEAT_S, max_msg_size=max_message_bytes, compress=False)
        self.max_message_bytes = max_message_bytes

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not message:
            message = f"message over {self.max_message_bytes} bytes".encode()
        return await super().close(code=code, message=message, drain=drain)


async def handle_room_socket(
    request: web.Request, registry: RoomRegistry, feeds: TeacherFeeds | None = None
) -> web.StreamResponse:
    """The aiohttp handler behind ``/rooms/{name}/ws``; ``feeds`` relays the bot's live states,
    coverage and alerts to teacher sockets (and to no other)."""
    settings = registry.settings
    if not same_origin(request):
        # Another site's page must not join a class through the visitor's browser.
        raise web.HTTPForbidden(text="Expected a WebSocket from this server's room page.")
    socket = RoomSocket(settings.max_message_bytes)
    await socket.prepare(request)
    room = registry.get(request.match_info["name"])
    if room is None or room.closed:
        await socket.close(code=CLOSE_NO_ROOM, message=b"no such room")
        return socket
    connection = _Connection(socket, room, f"{request.remote} {room.name}", feeds)
    await connection.run()
    return socket


class _Connection:
    """One socket's life in a room; ``peer`` is set once the room admitted it."""

    def __init__(
        self, socket: RoomSocket, room: Room, label: str, feeds: TeacherFeeds | None = None
    ) -> None:
        self.socket = socket
        self.feeds = feeds
        self.room = room
        self.settings = room.settings
        self.label = label
        self.outbox = Outbox(socket, self.settings.max_outgoing_messages, label)
        self.peer: Peer | None = None

    async def run(self) -> None:
        try:
            await self._serve()
        except ProtocolViolation as violation:
            logger.info(
                "room socket %s closed: %s %s", self.label, violation.code, violation.reason
            )
            self.outbox.close(violation.code, violation.reason)
        except asyncio.CancelledError:
            self.outbox.close(WSCloseCode.GOING_AWAY, "server shutting down")
            raise
        except Exception:
            logger.exception("room socket %s failed", self.label)
            self.outbox.close(CLOSE_INTERNAL, "server error")
        finally:
            if self.peer is not None:
                await self.room.remove(self.peer)
            self.outbox.close(WSCloseCode.OK, "bye")
            await self.outbox.wait_closed()

    async def _serve(self) -> None:
        """Read the socket until it closes; raises ``ProtocolViolation`` to have it closed."""
        settings = self.settings
        first = await _receive(
            self.socket,
            settings,
            deadline=time.monotonic() + settings.join_timeout_s,
            waiting_for="join",
        )
        if first is None:
            return
        if not isinstance(first, Join):
            raise ProtocolViolation(
                CLOSE_BAD_MESSAGE, f"expected join first, received {type(first).__name__.lower()}"
            )
        peer = self.room.admit(
            first,
            self.outbox,
            num_tiles_for=lambda role: _num_tiles(settings, role),
            welcome=lambda peer: welcome_message(
                participant_id=peer.info.id,
                name=peer.info.display_name,
                role=peer.info.role,
                room=self.room.name,
                num_tiles=peer.num_tiles,
            ),
        )
        self.peer = peer
        if self.feeds is not None and peer.info.role == "teacher":  # the room's word, not a name
            self.feeds.teacher_joined(self.room, peer)
        chat_budget = TokenBucket(settings.chat_burst, settings.chat_per_s)
        offer_deadline: float | None = time.monotonic() + settings.offer_timeout_s
        while True:
            message = await _receive(
                self.socket, settings, deadline=offer_deadline, waiting_for="offer"
            )
            if message is None:
                return
            if isinstance(message, Join):
                raise ProtocolViolation(CLOSE_BAD_MESSAGE, "join: already joined")
            if isinstance(message, Offer):
                self.outbox.send(answer_message(await peer.answer(message.sdp)))
                offer_deadline = None
            elif isinstance(message, Camera):
                peer.set_camera(message.on)
            elif isinstance(message, Chat):
                if not chat_budget.take():
                    raise ProtocolViolation(CLOSE_RATE_LIMITED, "chat flood")
                self.room.post_chat(peer.info.id, message.text, message.to)


async def _receive(
    socket: RoomSocket, settings: RoomSettings, *, deadline: float | None, waiting_for: str
) -> ClientMessage | None:
    """The next valid message; ``None`` when the socket closed."""
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    try:
        async with asyncio.timeout(timeout):
            received = await socket.receive()
    except TimeoutError:
        raise ProtocolViolation(
            CLOSE_TIMEOUT, f"no {waiting_for} within the time allowed"
        ) from None
    if received.type == WSMsgType.TEXT:
        return parse_client_message(received.data, max_bytes=settings.max_message_bytes)
    if received.type == WSMsgType.BINARY:
        raise ProtocolViolation(CLOSE_UNSUPPORTED, "binary frames are not accepted; send JSON text")
    return None  # CLOSE, CLOSING, CLOSED, ERROR (aiohttp has closed it with its own code)


def _num_tiles(settings: RoomSettings, role: str) -> int:
    return settings.max_tiles_per_teacher if role == "teacher" else settings.max_tiles_per_student
