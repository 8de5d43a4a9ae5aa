"""Janus TextRoom: chat over a WebRTC data channel (one aiortc peer connection per client).

Setup order matters: Janus offers an ``m=application`` section but never opens a channel itself,
so the client creates its data channel after applying the offer and before answering; then it
``join``s the room with JSON over that channel. Replies on the channel carry our ``transaction``;
everything else (joins, leaves, messages, whispers) is news for ``on_notice``. Whispers are
messages with ``to`` (one username) — Janus delivers them to that user only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.rtcdatachannel import RTCDataChannel

from bot.meetings.janus_session import (
    JanusConnectionLostError,
    JanusError,
    JanusHandle,
    JanusSession,
)
from bot.meetings.protocol import MeetingError

logger = logging.getLogger(__name__)

PLUGIN = "janus.plugin.textroom"
#: Incoming data channel messages longer than this are dropped (a chat line is a few hundred).
MAX_INCOMING_CHARS = 256 * 1024


@dataclass(frozen=True, slots=True)
class ChatUserJoined:
    username: str
    display: str


@dataclass(frozen=True, slots=True)
class ChatUserLeft:
    username: str


@dataclass(frozen=True, slots=True)
class ChatLine:
    """A message someone sent; ``whisper`` when it was addressed to us alone."""

    username: str
    text: str
    whisper: bool


@dataclass(frozen=True, slots=True)
class ChatRoomGone:
    """The room was destroyed or we were kicked."""

    reason: str


ChatNotice = ChatUserJoined | ChatUserLeft | ChatLine | ChatRoomGone


class TextRoomClient:
    """One TextRoom participant: ``join()``, ``send()``…, ``close()``; news go to ``on_notice``."""

    def __init__(
        self,
        session: JanusSession,
        room: int,
        *,
        username: str,
        display: str,
        pin: str | None = None,
        on_notice: Callable[[ChatNotice], None] | None = None,
        on_raw: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.session = session
        self.room = room
        self.username = username
        self.display = display
        self.pin = pin
        self._on_notice = on_notice or (lambda notice: None)
        self._on_raw = on_raw
        self._handle: JanusHandle | None = None
        self.pc: RTCPeerConnection | None = None
        self._channel: RTCDataChannel | None = None
        self._opened = asyncio.Event()
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._transactions = (f"{secrets.token_hex(3)}-{n}" for n in itertools.count(1))
        self.failed = asyncio.Event()
        self.failure_reason = ""
        self.num_dropped_messages = 0

    async def join(self, timeout: float = 15.0) -> list[ChatUserJoined]:
        """Set up the data channel and join; returns who was already in the room."""
        self._handle = await self.session.attach(PLUGIN)
        reply = await self._handle.request({"request": "setup"})
        if reply.jsep is None or reply.jsep.get("type") != "offer":
            raise MeetingError(
                f"Expected an SDP offer from TextRoom setup. Received: {reply.data!r:.200}"
            )
        self.pc = RTCPeerConnection()
        self.pc.on("connectionstatechange", self._on_connection_state)
        await self.pc.setRemoteDescription(
            RTCSessionDescription(sdp=reply.jsep["sdp"], type="offer")
        )
        # After the offer, before the answer: Janus will not open a channel for us.
        self._channel = self.pc.createDataChannel("JanusDataChannel")
        self._channel.on("open", self._opened.set)
        self._channel.on("message", self._on_message)
        self._channel.on("close", lambda: self._fail("data channel closed"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        local = self.pc.localDescription
        await self._handle.request({"request": "ack"}, {"type": local.type, "sdp": local.sdp})
        try:
            async with asyncio.timeout(timeout):
                await self._opened.wait()
        except TimeoutError as error:
            raise JanusConnectionLostError(
                f"TextRoom data channel did not open in {timeout} s"
            ) from error
        body: dict[str, Any] = {
            "textroom": "join",
            "room": self.room,
            "username": self.username,
            "display": self.display,
        }
        if self.pin:
            body["pin"] = self.pin
        answer = await self._call(body, timeout=timeout)
        present = []
        for item in answer.get("participants") or []:
            if isinstance(item, dict) and isinstance(item.get("username"), str):
                present.append(ChatUserJoined(item["username"], str(item.get("display") or "")))
        return present

    async def send(self, text: str, to: str | None = None, timeout: float = 10.0) -> None:
        """Send to the room, or to the user ``to`` only; waits for Janus's acknowledgement."""
        body: dict[str, Any] = {"textroom": "message", "room": self.room, "text": text}
        if to is not None:
            body["to"] = to
        await self._call(body, timeout=timeout)

    async def close(self) -> None:
        """Leave (best effort), detach, close the peer connection. Idempotent."""
        if self._channel is not None and self._channel.readyState == "open":
            with contextlib.suppress(Exception):
                await self._call({"textroom": "leave", "room": self.room}, timeout=1.0)
        if self._handle is not None and not self.session.is_lost:
            with contextlib.suppress(MeetingError, TimeoutError):
                await asyncio.wait_for(self._handle.detach(), 2.0)
        self._handle = None
        if self.pc is not None:
            await self.pc.close()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(JanusConnectionLostError("TextRoom client closed"))

    async def _call(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        channel = self._channel
        if channel is None or channel.readyState != "open":
            raise JanusConnectionLostError("TextRoom data channel is not open")
        transaction = next(self._transactions)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = future
        try:
            channel.send(json.dumps({**body, "transaction": transaction}))
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError as error:
            raise JanusConnectionLostError(
                f"TextRoom did not answer {body.get('textroom')} in {timeout} s"
            ) from error
        finally:
            self._pending.pop(transaction, None)

    def _on_message(self, raw: object) -> None:
        if not isinstance(raw, str) or len(raw) > MAX_INCOMING_CHARS:
            return self._drop("binary or oversized", repr(raw)[:200])
        try:
            message = json.loads(raw)
        except ValueError:
            return self._drop("not JSON", raw[:200])
        if not isinstance(message, dict) or not isinstance(message.get("textroom"), str):
            return self._drop("not a TextRoom message", raw[:200])
        if self._on_raw is not None:
            self._on_raw(message)
        transaction = message.get("transaction")
        future = self._pending.get(transaction) if isinstance(transaction, str) else None
        kind = message["textroom"]
        if future is not None and not future.done():
            if kind == "error":
                future.set_exception(
                    JanusError(message.get("error_code"), message.get("error", "?"), "textroom")
                )
            else:
                future.set_result(message)
            return
        notice = _notice_of(kind, message, self.room, self.username)
        if notice is None:
            if kind not in ("success", "event"):
                logger.info("unknown TextRoom message %r ignored", kind[:40])
            return
        try:
            self._on_notice(notice)
        except Exception:  # the consumer's bug must not silence the chat
            logger.exception("TextRoom notice handler failed")

    def _drop(self, why: str, sample: str) -> None:
        self.num_dropped_messages += 1
        logger.warning("dropped a malformed TextRoom message (%s)", why)
        logger.debug("the malformed message: %.200s", sample)  # may hold names and chat

    def _on_connection_state(self) -> None:
        if self.pc is not None and self.pc.connectionState in ("failed", "closed"):
            self._fail(f"peer connection {self.pc.connectionState}")

    def _fail(self, reason: str) -> None:
        if not self.failed.is_set():
            self.failure_reason = reason
            self.failed.set()


def _notice_of(kind: str, message: dict[str, Any], room: int, me: str) -> ChatNotice | None:
    if message.get("room") not in (None, room):
        return None
    username = (
        message.get("username") if kind in ("join", "leave", "kicked") else message.get("from")
    )
    if kind in ("destroyed",):
        return ChatRoomGone("chat room destroyed")
    if not isinstance(username, str):
        return None
    if kind == "join":
        return ChatUserJoined(username, str(message.get("display") or ""))
    if kind == "leave":
        return ChatUserLeft(username)
    if kind == "kicked":
        return (
            ChatRoomGone("kicked from the chat room") if username == me else ChatUserLeft(username)
        )
    if kind in ("message", "whisper"):
        text = message.get("text")
        if not isinstance(text, str):
            return None
        return ChatLine(username, text, whisper=kind == "whisper" or message.get("whisper") is True)
    return None
