"""The media worker process: its own Janus subscriber per meeting link, decoding, face finding.

One asyncio loop per worker. aiortc decodes each received video in its own thread; a feed under
analysis has one task that sleeps until a sample is due, takes the newest decoded frame (newest
frame wins: the ones in between were never wanted) and runs the face stage inline — a few
milliseconds, and OpenCV releases the GIL. Only crops and events go back to the parent, with
back-pressure: while the parent is slow, ``drain()`` holds the analysis tasks, frames keep being
replaced, nothing queues.

Never imports TensorFlow (it segfaults beside pylibsrtp); the parent checks ``WorkerReady``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys

from bot.media.wire import (
    Analyse,
    CloseLink,
    FacesFound,
    LinkFailed,
    OpenLink,
    Shutdown,
    Subscribe,
    ToParent,
    Unsubscribe,
    VideoDown,
    VideoUp,
    WorkerReady,
    encode,
    read_message,
)
from bot.meetings.frames import FrameSource, due_frames
from bot.meetings.janus_session import JanusSession
from bot.meetings.janus_subscriber import VideoRoomSubscriber
from bot.meetings.remote_video import AnalysedFrame
from engine.face_settings import DetectorSettings
from engine.faces import FaceDetectors, SourceAnalyser

logger = logging.getLogger(__name__)


class _Outbox:
    """The parent connection; ``send`` waits while the socket is full (back-pressure)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    async def send(self, message: ToParent) -> None:
        self.writer.write(encode(message))
        await self.writer.drain()

    def post(self, message: ToParent) -> None:
        """Send without waiting (events from callbacks; small and rare)."""
        self.writer.write(encode(message))


class _WorkerLink:
    """One meeting link's subscriber in this worker, and the analysis tasks of its feeds."""

    def __init__(self, spec: OpenLink, outbox: _Outbox, detectors: FaceDetectors) -> None:
        self.spec = spec
        self.outbox = outbox
        self.detectors = detectors
        self.session: JanusSession | None = None
        self.subscriber: VideoRoomSubscriber | None = None
        self.sources: dict[int, FrameSource] = {}
        self.wanted: dict[int, tuple[str, float, str]] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self._watch: asyncio.Task[None] | None = None

    async def open(self) -> None:
        spec = self.spec
        self.session = await JanusSession.connect(
            spec.websocket_url, api_secret=spec.api_secret, token=spec.token
        )
        self.subscriber = VideoRoomSubscriber(
            self.session,
            spec.room,
            private_id=spec.private_id,
            pin=spec.pin,
            on_video_added=self._added,
            on_video_removed=self._removed,
        )
        self._watch = asyncio.create_task(self._watch_failure(), name="worker-link-watch")

    async def _watch_failure(self) -> None:
        assert self.session is not None and self.subscriber is not None
        lost = asyncio.create_task(self.session.wait_lost())
        failed = asyncio.create_task(self.subscriber.failed.wait())
        try:
            await asyncio.wait({lost, failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            failed.cancel()
        reason = self.session.lost_reason or self.subscriber.failure_reason
        self.outbox.post(LinkFailed(self.spec.link_id, reason or "subscriber failed"))

    def _added(self, feed_id: int, source: FrameSource, codec: str) -> None:
        self.sources[feed_id] = source
        self.outbox.post(VideoUp(self.spec.link_id, feed_id, codec))
        if feed_id in self.wanted:
            self._start(feed_id)

    def _removed(self, feed_id: int) -> None:
        self.sources.pop(feed_id, None)
        task = self.tasks.pop(feed_id, None)
        if task is not None:
            task.cancel()
        self.outbox.post(VideoDown(self.spec.link_id, feed_id, "stream removed"))

    def analyse(self, request: Analyse) -> None:
        task = self.tasks.pop(request.feed_id, None)
        if task is not None:
            task.cancel()
        if request.fps is None:
            self.wanted.pop(request.feed_id, None)
            return
        self.wanted[request.feed_id] = (request.name, request.fps, request.stage)
        if request.feed_id in self.sources:
            self._start(request.feed_id)

    def _start(self, feed_id: int) -> None:
        name, fps, stage = self.wanted[feed_id]
        source = self.sources[feed_id]
        self.tasks[feed_id] = asyncio.create_task(
            self._analyse(feed_id, source, name, fps, stage), name=f"analyse {feed_id}"
        )

    async def _analyse(
        self, feed_id: int, source: FrameSource, name: str, fps: float, stage: str
    ) -> None:
        analyser = SourceAnalyser(self.detectors.get(stage), name, fps)
        async for frame, frame_t in due_frames(source, fps):
            found = analyser.analyse_or_skip(frame.image, frame_t)
            if found is None:  # skipped (logged): the next due frame is analysed as usual
                continue
            await self.outbox.send(
                FacesFound(
                    self.spec.link_id,
                    feed_id,
                    AnalysedFrame(frame_t, found.crops, found.absent, source.num_received),
                )
            )

    async def close(self) -> None:
        tasks = [*self.tasks.values(), *([self._watch] if self._watch else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.subscriber is not None:
            with contextlib.suppress(Exception):
                await self.subscriber.close()
        if self.session is not None:
            with contextlib.suppress(Exception):
                await self.session.close()


async def _serve(sock: socket.socket, face_settings: DetectorSettings | None) -> None:
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    outbox = _Outbox(writer)
    # Each stage loaded when a bot first asks for it, with the runtime's settings.
    detectors = FaceDetectors(settings=face_settings)
    links: dict[int, _WorkerLink] = {}
    outbox.post(WorkerReady(os.getpid(), "tensorflow" in sys.modules))
    try:
        while True:
            try:
                message = await read_message(reader)
            except asyncio.IncompleteReadError:
                return  # the parent is gone: so are we
            try:
                if isinstance(message, OpenLink):
                    link = links[message.link_id] = _WorkerLink(message, outbox, detectors)
                    try:
                        await link.open()
                    except Exception as error:
                        outbox.post(LinkFailed(message.link_id, f"cannot connect: {error!r}"))
                elif isinstance(message, Subscribe):
                    found = links.get(message.link_id)
                    if found is not None and found.subscriber is not None:
                        await found.subscriber.add(list(message.videos))
                elif isinstance(message, Unsubscribe):
                    found = links.get(message.link_id)
                    if found is not None and found.subscriber is not None:
                        await found.subscriber.remove(message.feed_id)
                elif isinstance(message, Analyse):
                    found = links.get(message.link_id)
                    if found is not None:
                        found.analyse(message)
                elif isinstance(message, CloseLink):
                    closing = links.pop(message.link_id, None)
                    if closing is not None:
                        await closing.close()
                elif isinstance(message, Shutdown):
                    return
            except Exception as error:  # one link's trouble must not end the worker
                logger.exception("media worker: %s failed", type(message).__name__)
                link_id = getattr(message, "link_id", None)
                if isinstance(link_id, int):
                    outbox.post(LinkFailed(link_id, f"{type(message).__name__}: {error!r}"))
    finally:
        for link in list(links.values()):
            await link.close()
        writer.close()


def worker_main(
    sock: socket.socket, log_level: int, face_settings: DetectorSettings | None = None
) -> None:
    """The worker process's entry point (spawned: a fresh interpreter, nothing inherited but
    its arguments; ``face_settings`` as the parent's ``MediaWorkers`` were given them)."""
    logging.basicConfig(
        level=log_level, format="%(asctime)s %(levelname)s media-worker %(name)s: %(message)s"
    )
    logging.getLogger("aiortc.rtcrtpreceiver").setLevel(logging.ERROR)  # until a keyframe
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(sock, face_settings))
