"""One meeting link's video subscription, spread over the media workers.

Takes the place of ``VideoRoomSubscriber`` in a ``JanusLink`` (same ``add`` / ``remove`` /
``close`` / ``failed``): each feed goes to the least loaded worker, which subscribes to it on
its own Janus connection (opened on first use, with the bot member's ``private_id``). The link
reports a ``RemoteVideo`` per feed; it yields the worker's analysed frames.

Order of events as the connector promises them: ``remove`` ends the video and reports it before
returning, and a worker's late news about a feed no longer subscribed is ignored. A worker's
lost Janus connection fails the whole link (the connector re-joins, as for its own connection);
a worker that died is restarted by the pool and this link re-subscribes its feeds there, each
video recording the gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.media.pool import MediaWorkers
from bot.media.wire import (
    Analyse,
    CloseLink,
    FacesFound,
    LinkFailed,
    OpenLink,
    Subscribe,
    ToParent,
    Unsubscribe,
    VideoDown,
    VideoUp,
)
from bot.meetings.janus_link import LinkCallbacks, SubscriberFactory, VideoSubscriber
from bot.meetings.janus_session import JanusSession
from bot.meetings.janus_videoroom import PublishedVideo
from bot.meetings.remote_video import RemoteVideo
from bot.meetings.url import JanusMeetingUrl

logger = logging.getLogger(__name__)


class ShardedSubscriber:
    """Every watched publisher's video, received by the media workers."""

    def __init__(
        self,
        workers: MediaWorkers,
        url: JanusMeetingUrl,
        *,
        private_id: int | None,
        on_video_added: Callable[[int, RemoteVideo, str], None],
        on_video_removed: Callable[[int], None],
    ) -> None:
        self.workers = workers
        self.url = url
        self.private_id = private_id
        self._on_added = on_video_added
        self._on_removed = on_video_removed
        self.link_id = workers.register(self)
        self._opened: set[int] = set()
        self._feeds: dict[int, tuple[int, PublishedVideo]] = {}  # feed → (worker, video)
        self._videos: dict[int, RemoteVideo] = {}
        self.failed = asyncio.Event()
        self.failure_reason = ""
        self._closed = False

    def feeds(self) -> dict[int, int]:
        """Feeds whose video is flowing now: ``{feed_id: worker}``."""
        return {feed: self._feeds[feed][0] for feed in self._videos if feed in self._feeds}

    async def add(self, videos: list[PublishedVideo]) -> None:
        for video in videos:
            if video.feed_id in self._feeds or self._closed:
                continue
            worker = self.workers.least_loaded()
            self._feeds[video.feed_id] = (worker, video)
            self._update_load(worker)
            self._open(worker)
            self.workers.send(worker, Subscribe(self.link_id, (video,)))

    async def remove(self, feed_id: int) -> None:
        found = self._feeds.pop(feed_id, None)
        self._end(feed_id, "publisher left")
        if found is not None:
            self._update_load(found[0])
            self.workers.send(found[0], Unsubscribe(self.link_id, feed_id))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for feed_id in list(self._videos):
            self._end(feed_id, "left")
        for worker in self._opened:
            self.workers.send(worker, CloseLink(self.link_id))
        self._feeds.clear()
        self.workers.unregister(self.link_id)

    # -- from the pool ---------------------------------------------------------------------

    def on_message(self, worker: int, message: ToParent) -> None:
        if self._closed:
            return
        if isinstance(message, FacesFound):
            video = self._videos.get(message.feed_id)
            if video is not None:
                video.push(message.frame)
        elif isinstance(message, VideoUp):
            self._video_up(worker, message)
        elif isinstance(message, VideoDown):
            if self._feeds.get(message.feed_id, (None,))[0] == worker:
                self._end(message.feed_id, message.reason)
        elif isinstance(message, LinkFailed):
            self._fail(f"media worker {worker}: {message.reason}")

    async def on_worker_restarted(self, worker: int, gap_started: float) -> None:
        """The pool restarted ``worker``: subscribe its feeds there again, analysis included."""
        if self._closed or worker not in self._opened:
            return
        self._opened.discard(worker)
        mine = [video for feed, (at, video) in self._feeds.items() if at == worker]
        if not mine:
            return
        logger.warning(
            "media worker %d restarted: re-subscribing %d videos there", worker, len(mine)
        )
        self._open(worker)
        self.workers.send(worker, Subscribe(self.link_id, tuple(mine)))
        for video in mine:
            remote = self._videos.get(video.feed_id)
            if remote is not None:
                remote.interrupted(gap_started)
                if remote.wanted is not None:
                    label, fps, stage = remote.wanted
                    self.workers.send(
                        worker, Analyse(self.link_id, video.feed_id, label, fps, stage)
                    )

    # -- inside ----------------------------------------------------------------------------

    def _open(self, worker: int) -> None:
        if worker in self._opened:
            return
        self._opened.add(worker)
        url = self.url
        self.workers.send(
            worker,
            OpenLink(
                self.link_id,
                url.websocket_url,
                url.room,
                url.pin,
                url.api_secret,
                url.token,
                self.private_id,
            ),
        )

    def _video_up(self, worker: int, message: VideoUp) -> None:
        found = self._feeds.get(message.feed_id)
        if found is None or found[0] != worker:
            return  # removed (or moved) while the worker was subscribing
        if message.feed_id in self._videos:
            return  # the same video after a worker restart: it carries on, gap recorded
        feed_id = message.feed_id

        def control(label: str, fps: float | None, stage: str) -> None:
            at = self._feeds.get(feed_id)
            if at is not None:
                self.workers.send(at[0], Analyse(self.link_id, feed_id, label, fps, stage))

        video = RemoteVideo(f"feed {feed_id}", control)
        self._videos[feed_id] = video
        self._on_added(feed_id, video, message.codec)

    def _end(self, feed_id: int, reason: str) -> None:
        """End the video and report it, with no await in between (see ``janus_subscriber``)."""
        video = self._videos.pop(feed_id, None)
        if video is not None:
            video.close(reason)
            self._on_removed(feed_id)

    def _update_load(self, worker: int) -> None:
        count = sum(1 for at, _ in self._feeds.values() if at == worker)
        self.workers.set_load(self.link_id, worker, count)

    def _fail(self, reason: str) -> None:
        if not self.failed.is_set():
            self.failure_reason = reason
            self.failed.set()


def sharded_subscribers(workers: MediaWorkers) -> SubscriberFactory:
    """A ``SubscriberFactory`` for ``JanusConnector``: each link's videos go to ``workers``."""

    def build(
        _session: JanusSession,
        url: JanusMeetingUrl,
        private_id: int | None,
        callbacks: LinkCallbacks,
    ) -> VideoSubscriber:
        return ShardedSubscriber(
            workers,
            url,
            private_id=private_id,
            on_video_added=callbacks.video_added,
            on_video_removed=callbacks.video_removed,
        )

    return build
