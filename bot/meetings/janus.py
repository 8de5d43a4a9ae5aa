"""The Janus meeting connector: VideoRoom for cameras, TextRoom for chat, re-joins on loss.

Implements :class:`bot.meetings.protocol.MeetingConnector`. One :class:`JanusLink` at a time does
the talking; this module owns what outlives a link: the roster, the event stream, the supervisor
that notices a broken link, tears it down and re-joins with exponential backoff.

Events produced while a link is being opened are held back and released only once the join has
succeeded, so the consumer never sees a participant from a half-made attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from bot.meetings.connect_errors import describe_connection_error
from bot.meetings.events import EventStream
from bot.meetings.frames import FrameSource
from bot.meetings.janus_link import (
    JanusLink,
    LinkCallbacks,
    LinkSettings,
    SubscriberFactory,
    local_subscriber,
)
from bot.meetings.janus_textroom import ChatLine, ChatNotice, ChatUserJoined, ChatUserLeft
from bot.meetings.janus_videoroom import MemberPresent
from bot.meetings.protocol import (
    ChatReceived,
    ChatUnavailableError,
    ConnectionLost,
    ConnectionRestored,
    MeetingEnded,
    MeetingError,
    MeetingEvent,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    VideoTrackAdded,
    VideoTrackRemoved,
    check_chat_text,
    normalize_display_name,
)
from bot.meetings.remote_video import RemoteVideo
from bot.meetings.roster import Roster, RosterChange
from bot.meetings.url import JanusMeetingUrl
from engine.backoff import Backoff

logger = logging.getLogger(__name__)

DEFAULT_DISPLAY_NAME = "classpulse bot"


class JanusConnector:
    """A Janus VideoRoom + TextRoom meeting. See ``bot.meetings.protocol`` for the contract."""

    def __init__(
        self,
        url: JanusMeetingUrl,
        *,
        display_name: str = DEFAULT_DISPLAY_NAME,
        settings: LinkSettings | None = None,
        backoff: Backoff | None = None,
        max_pending_chat: int = 256,
        subscribers: SubscriberFactory = local_subscriber,
    ) -> None:
        self.url = url
        #: Who receives the videos: this process, or the media workers (``bot.media``).
        self.subscribers = subscribers
        self.display_name = normalize_display_name(display_name, fallback=DEFAULT_DISPLAY_NAME)
        self.settings = settings or LinkSettings()
        self.backoff = backoff or Backoff()
        self._roster = Roster()
        self._stream = EventStream(max_pending_chat)
        self._held: list[MeetingEvent] | None = None
        self._videos: dict[int, Participant] = {}
        self._link: JanusLink | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._left = False
        self.num_reconnects = 0

    # -- MeetingConnector ------------------------------------------------------------------

    async def join(self) -> None:
        if self._link is not None or self._left:
            raise MeetingError(
                "Expected join() once on a fresh connector. Received: a second join()"
            )
        try:
            await self._open_link()
        except Exception as error:
            # A failed first join is final for this connector (its event stream has ended);
            # the caller decides whether to try again with a new one.
            self._left = True
            self._stream.end()
            if isinstance(error, MeetingError):
                raise
            raise MeetingError(
                f"cannot join {self.url.redacted()}: expected a Janus server that accepts the "
                f"join. Received: {describe_connection_error(error)}"
            ) from error
        self._supervisor = asyncio.create_task(self._supervise(), name="janus-supervisor")

    async def leave(self) -> None:
        if self._left:
            return
        self._left = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        await self._drop_link()
        self._stream.end()

    def events(self) -> AsyncIterator[MeetingEvent]:
        return self._stream.__aiter__()

    async def send_chat(self, text: str, to: Participant | None = None) -> None:
        check_chat_text(text)
        link = self._link
        if link is None or link.chat is None or link.is_broken():
            raise ChatUnavailableError(
                "chat is not connected (joining, or re-joining after a loss)"
            )
        username = None
        if to is not None:
            username = self._roster.chat_user_of(to.id)
            if username is None:
                raise ChatUnavailableError(f"{to.display_name!r} ({to.id}) is not in the chat room")
        try:
            await link.chat.send(text, to=username, timeout=self.settings.request_timeout_s)
        except MeetingError as error:
            raise ChatUnavailableError(f"chat message not delivered: {error}") from error

    def participants(self) -> tuple[Participant, ...]:
        return self._roster.participants()

    # -- what tests and the benchmark look at ------------------------------------------------

    @property
    def num_dropped_chat(self) -> int:
        return self._stream.num_dropped_chat

    @property
    def link(self) -> JanusLink | None:
        return self._link

    # -- the link's lifecycle -------------------------------------------------------------------

    async def _open_link(self, lost_at: float | None = None) -> None:
        """Open a link. Its events are held until it is up; after a loss (``lost_at``, monotonic
        seconds) ``ConnectionRestored`` goes out first."""
        link = JanusLink(
            self.url, self.display_name, self.settings, self._callbacks(), self.subscribers
        )
        self._link = link
        self._held = []
        try:
            await link.open()
        except BaseException:
            await self._drop_link(emit=False)
            raise
        held, self._held = self._held, None
        if lost_at is not None:
            self._stream.put(ConnectionRestored(time.time(), time.monotonic() - lost_at))
        for event in held:
            self._stream.put(event)

    async def _drop_link(self, *, emit: bool = True) -> None:
        """Close the link; with ``emit``, report every video and participant as gone."""
        link, self._link = self._link, None
        if link is None:
            return
        if not emit:
            self._held = []
        await link.close()
        change = self._roster.clear()
        self._videos.clear()
        if emit:
            self._apply(change)
        self._held = None

    async def _supervise(self) -> None:
        while True:
            link = self._link
            assert link is not None
            reason = await link.wait_broken()
            if link.final:
                logger.warning("meeting ended for the bot: %s", reason)
                await self._drop_link()
                self._stream.put(MeetingEnded(reason))
                self._stream.end()
                return
            lost_at = time.monotonic()
            logger.warning("lost the meeting (%s); re-joining", reason)
            self._emit(ConnectionLost(reason, time.time()))
            await self._drop_link()
            for delay in self.backoff.delays():
                await asyncio.sleep(delay)
                try:
                    await self._open_link(lost_at)
                    break
                except MeetingError as error:
                    logger.info("re-join failed, retrying: %s", error)
                except Exception:  # e.g. an SDP aiortc chokes on: keep trying, never die silently
                    logger.exception("re-join failed unexpectedly, retrying")
            self.num_reconnects += 1
            logger.warning("back in the meeting after %.1f s", time.monotonic() - lost_at)

    def _callbacks(self) -> LinkCallbacks:
        return LinkCallbacks(
            member_present=self._member_present,
            member_gone=lambda feed: self._apply(self._roster.remove_feed(feed)),
            video_added=self._video_added,
            video_removed=self._video_removed,
            chat=self._chat,
        )

    # -- callbacks from the link --------------------------------------------------------------

    def _emit(self, event: MeetingEvent) -> None:
        if self._held is not None:
            self._held.append(event)
        else:
            self._stream.put(event)

    def _apply(self, change: RosterChange) -> None:
        for participant in change.left:
            for feed_id, owner in list(self._videos.items()):
                if (
                    owner == participant
                ):  # a video still listed goes first, whatever the order news came in
                    self._video_removed(feed_id)
            self._emit(ParticipantLeft(participant))
        for participant in change.joined:
            self._emit(ParticipantJoined(participant))

    def _member_present(self, member: MemberPresent) -> None:
        self._apply(self._roster.add_feed(member.feed_id, member.display))

    def _video_added(self, feed_id: int, source: FrameSource | RemoteVideo, codec: str) -> None:
        participant = self._roster.by_feed(feed_id)
        if participant is None or feed_id in self._videos:
            logger.warning("video for feed %s with no participant; not reported", feed_id)
            return
        self._videos[feed_id] = participant
        self._emit(VideoTrackAdded(participant, source, codec))

    def _video_removed(self, feed_id: int) -> None:
        participant = self._videos.pop(feed_id, None)
        if participant is not None:
            self._emit(VideoTrackRemoved(participant))

    def _chat(self, notice: ChatNotice) -> None:
        if isinstance(notice, ChatUserJoined):
            self._apply(self._roster.add_chat_user(notice.username, notice.display))
        elif isinstance(notice, ChatUserLeft):
            self._apply(self._roster.remove_chat_user(notice.username))
        elif isinstance(notice, ChatLine):
            sender = self._roster.by_chat_user(notice.username)
            if (
                sender is None
            ):  # a message before its sender's join: take them in under their username
                self._apply(self._roster.add_chat_user(notice.username, notice.username))
                sender = self._roster.by_chat_user(notice.username)
            assert sender is not None
            self._emit(ChatReceived(sender, notice.text, notice.whisper, time.time()))
