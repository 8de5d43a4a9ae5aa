"""One connection's worth of a Janus meeting: session, VideoRoom member + subscriber, TextRoom.

A link is built, used until something breaks, then thrown away whole: aiortc has no ICE restart
and a restarted Janus remembers nothing, so re-joining from scratch is the only recovery that
always works. The connector (``janus.py``) owns the link, the roster and the event stream; the
link reports through the callbacks it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bot.meetings.frames import FrameSource
from bot.meetings.janus_session import JanusSession
from bot.meetings.janus_subscriber import VideoRoomSubscriber
from bot.meetings.janus_textroom import ChatNotice, ChatRoomGone, TextRoomClient
from bot.meetings.janus_videoroom import (
    MemberGone,
    MemberPresent,
    MemberUnpublished,
    PublishedVideo,
    RoomGone,
    RoomNotice,
    VideoRoomMember,
)
from bot.meetings.protocol import MeetingError
from bot.meetings.remote_video import RemoteVideo
from bot.meetings.url import JanusMeetingUrl

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LinkSettings:
    heartbeat_s: float = 10.0
    keepalive_s: float = 25.0
    request_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class LinkCallbacks:
    """How the link reports; all called on the event loop, in order."""

    member_present: Callable[[MemberPresent], None]
    member_gone: Callable[[int], None]
    video_added: Callable[[int, FrameSource | RemoteVideo, str], None]
    video_removed: Callable[[int], None]
    chat: Callable[[ChatNotice], None]


class VideoSubscriber(Protocol):
    """What receives the watched videos: ``VideoRoomSubscriber`` in this process, or
    ``bot.media.sharded.ShardedSubscriber`` spreading them over media worker processes."""

    failed: asyncio.Event
    failure_reason: str

    async def add(self, videos: list[PublishedVideo]) -> None: ...
    async def remove(self, feed_id: int) -> None: ...
    async def close(self) -> None: ...


#: Builds a link's subscriber: ``(session, url, private_id, callbacks)``.
SubscriberFactory = Callable[
    [JanusSession, JanusMeetingUrl, int | None, LinkCallbacks], VideoSubscriber
]


def local_subscriber(
    session: JanusSession, url: JanusMeetingUrl, private_id: int | None, callbacks: LinkCallbacks
) -> VideoSubscriber:
    """Receives and decodes every video in this process (one peer connection)."""
    return VideoRoomSubscriber(
        session,
        url.room,
        private_id=private_id,
        pin=url.pin,
        on_video_added=callbacks.video_added,
        on_video_removed=callbacks.video_removed,
    )


class JanusLink:
    """Open with :meth:`open`; :meth:`wait_broken` returns why it broke; :meth:`close` always."""

    def __init__(
        self,
        url: JanusMeetingUrl,
        display_name: str,
        settings: LinkSettings,
        callbacks: LinkCallbacks,
        subscribers: SubscriberFactory = local_subscriber,
    ) -> None:
        self.url = url
        self.subscribers = subscribers
        self.display_name = display_name
        self.settings = settings
        self.callbacks = callbacks
        #: A fresh TextRoom username each time: the previous link's may still be held by Janus
        #: until its session times out (network cut), and usernames must be unique in a room.
        self.chat_username = f"classpulse-{secrets.token_hex(4)}"
        self.session: JanusSession | None = None
        self.member: VideoRoomMember | None = None
        self.subscriber: VideoSubscriber | None = None
        self.chat: TextRoomClient | None = None
        self._notices: asyncio.Queue[RoomNotice] = asyncio.Queue()
        self._broken = asyncio.Event()
        self.broken_reason = ""
        #: True when the meeting is over for the bot (room destroyed, kicked): do not re-join.
        self.final = False
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        """Connect and join both rooms; raises ``MeetingError`` (and closes nothing: call close)."""
        url, settings = self.url, self.settings
        self.session = await JanusSession.connect(
            url.websocket_url,
            api_secret=url.api_secret,
            token=url.token,
            heartbeat_s=settings.heartbeat_s,
            keepalive_s=settings.keepalive_s,
            request_timeout_s=settings.request_timeout_s,
        )
        self.member = VideoRoomMember(
            self.session, url.room, self.display_name, url.pin, self._notices.put_nowait
        )
        present = await self.member.join()
        self.subscriber = self.subscribers(
            self.session, url, self.member.private_id, self.callbacks
        )
        self.chat = TextRoomClient(
            self.session,
            url.text_room,
            username=self.chat_username,
            display=self.display_name,
            pin=url.text_pin or url.pin,
            on_notice=self._on_chat,
        )
        for user in await self.chat.join(timeout=settings.request_timeout_s):
            self._on_chat(user)
        for member in present:
            self.callbacks.member_present(member)
        videos = [m.video for m in present if m.video is not None]
        if videos:
            await self.subscriber.add(videos)
        self._tasks = [
            asyncio.create_task(self._work(), name="janus-link-notices"),
            asyncio.create_task(self._watch(), name="janus-link-watch"),
        ]

    async def wait_broken(self) -> str:
        await self._broken.wait()
        return self.broken_reason

    def is_broken(self) -> bool:
        return self._broken.is_set()

    async def close(self) -> None:
        """Cancel the tasks; close the subscriber (ending its frame sources), chat, session."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for part in (self.subscriber, self.chat, self.member):
            if part is not None:
                try:
                    await part.close()
                except Exception:  # closing must reach the session whatever a part did
                    logger.exception("closing %s failed", type(part).__name__)
        if self.session is not None:
            await self.session.close()

    def _break(self, reason: str, *, final: bool = False) -> None:
        if not self._broken.is_set():
            self.broken_reason = reason
            self.final = final
            self._broken.set()

    def _on_chat(self, notice: ChatNotice) -> None:
        if isinstance(notice, ChatRoomGone):
            self._break(notice.reason, final=True)
        elif getattr(notice, "username", None) != self.chat_username:
            self.callbacks.chat(notice)

    async def _work(self) -> None:
        """Room news, one at a time: the subscriber is renegotiated in the order Janus told us."""
        assert self.subscriber is not None
        while True:
            notice = await self._notices.get()
            try:
                if isinstance(notice, MemberPresent):
                    self.callbacks.member_present(notice)
                    if notice.video is not None:
                        await self.subscriber.add([notice.video])
                elif isinstance(notice, MemberUnpublished):
                    await self.subscriber.remove(notice.feed_id)
                elif isinstance(notice, MemberGone):
                    await self.subscriber.remove(notice.feed_id)
                    self.callbacks.member_gone(notice.feed_id)
                elif isinstance(notice, RoomGone):
                    final = "hangup" not in notice.reason and "detached" not in notice.reason
                    self._break(notice.reason, final=final)
            except MeetingError as error:
                self._break(f"VideoRoom request failed: {error}")
            except Exception as error:  # keep the connector alive: re-join instead
                logger.exception("VideoRoom notice %r failed", notice)
                self._break(f"VideoRoom handling failed: {error!r}")

    async def _watch(self) -> None:
        session, subscriber, chat = self.session, self.subscriber, self.chat
        assert session is not None and subscriber is not None and chat is not None
        waits = {
            asyncio.create_task(session.wait_lost()): lambda: session.lost_reason,
            asyncio.create_task(subscriber.failed.wait()): lambda: subscriber.failure_reason,
            asyncio.create_task(chat.failed.wait()): lambda: f"chat {chat.failure_reason}",
            asyncio.create_task(self._broken.wait()): lambda: self.broken_reason,
        }
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            self._break(waits[next(iter(done))]())
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
