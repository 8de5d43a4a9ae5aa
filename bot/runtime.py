"""The bot runtime of one process: storage writer, inference, detector, and the running bots.

``classpulse join`` runs one bot with it; ``classpulse serve`` runs many (``POST /api/bots``).
Every bot shares one writer and one inference process, so the model batches across meetings.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from bot.bot_options import DuplicateBotError, OptionError, TooManyBotsError, session_settings
from bot.live import LiveFeed
from bot.media.pool import MediaWorkers
from bot.meetings.protocol import MeetingConnector, MeetingError
from bot.outcomes import Outcome, failure_outcome
from bot.scoring import NoScoring, ScoringHub
from bot.session import MeetingSession
from bot.session.settings import check_mode
from bot.settings import num_media_workers_from_env
from engine.attention import AttentionSettings
from engine.face_settings import DetectorSettings
from engine.faces import FaceDetector, FaceDetectors
from engine.inference import InferenceSettings
from storage import Storage, Writer

logger = logging.getLogger(__name__)

#: Builds a connector for a meeting URL; returns None when the URL is not of its kind.
ConnectorFactory = Callable[[str, str], tuple[MeetingConnector, str, str] | None]

__all__ = [
    "BotHandle",
    "BotRuntime",
    "DuplicateBotError",
    "OptionError",
    "TooManyBotsError",
    "session_settings",
]

#: Failures whose own text is fit to show (it says what was expected); others get a sentence.
MeetingErrors = (MeetingError, OSError, ValueError)

#: Finished bots remembered (for ``GET /api/bots``); older ones are forgotten.
MAX_FINISHED_BOTS = 50


def validate_meeting_url(url: str) -> None:
    """Raises ``ValueError`` unless ``url`` is a meeting URL of a known kind, before any start."""
    from bot.meetings.url import parse_any_meeting_url

    parse_any_meeting_url(url)


def janus_connector(
    url: str, bot_name: str, media: MediaWorkers | None = None
) -> tuple[MeetingConnector, str, str] | None:
    """``janus+ws://…`` → (connector, platform, room); with ``media``, the videos are received
    and analysed by those worker processes."""
    if not url.lower().startswith("janus+"):
        return None
    from bot.media.sharded import sharded_subscribers
    from bot.meetings.janus import JanusConnector
    from bot.meetings.janus_link import local_subscriber
    from bot.meetings.url import parse_meeting_url

    parsed = parse_meeting_url(url)
    subscribers = local_subscriber if media is None else sharded_subscribers(media)
    connector = JanusConnector(parsed, display_name=bot_name, subscribers=subscribers)
    return connector, "janus", str(parsed.room)


def meeting_key(url: str) -> str:
    """The meeting a URL names, without secrets: two URLs with the same key are one meeting."""
    from bot.meetings.url import parse_any_meeting_url

    return parse_any_meeting_url(url).redacted()


@dataclass
class BotHandle:
    """A bot in a meeting, as the API and the CLI show it."""

    id: str
    meeting_url: str
    teacher: str
    session: MeetingSession
    task: asyncio.Task[None]
    started_at: float = field(default_factory=time.time)
    error: str | None = None
    #: Why it failed, as a stable code and a sentence (``None`` unless it failed).
    outcome: Outcome | None = None

    @property
    def active(self) -> bool:
        return not self.task.done()

    @property
    def teacher_code(self) -> str:
        """The code the teacher claims with now (the session replaces a leaked one)."""
        return self.session.teacher_code


class BotRuntime:
    """Use ``async with BotRuntime(storage) as runtime:``; ``start_bot`` joins a meeting."""

    def __init__(
        self,
        storage: Storage,
        *,
        inference: InferenceSettings | None = None,
        live: LiveFeed | None = None,
        connector_factories: list[ConnectorFactory] | None = None,
        num_detection_threads: int = 2,
        max_bots: int = 10,
        num_media_workers: int | None = None,
        mode: str = "engagement",
        face_settings: DetectorSettings | None = None,
        attention: AttentionSettings | None = None,
    ) -> None:
        """``num_media_workers``: processes that receive, decode and find faces (``bot.media``);
        ``None``: ``$CLASSPULSE_MEDIA_WORKERS``, else one per core; 1: all in this process.
        ``face_settings``: what the face stages are built with, here and in every media worker
        (``stage`` is each bot's mode's; default ``DetectorSettings()``). ``attention``: when a
        turned head or closed eyes is alerted, for every bot (default ``AttentionSettings()``)."""
        self.storage = storage
        self.live = live or LiveFeed()
        #: The mode of a bot whose options name none (``$CLASSPULSE_MODE``). The inference
        #: process starts with the runtime when it is ``engagement``, else with the first
        #: ``engagement`` bot: an ``attention``-only server never loads the emotion model.
        self.mode = check_mode(mode)
        self.scoring = ScoringHub(inference)
        self._scoring_started = False
        self._scoring_lock = asyncio.Lock()
        #: Set by ``async with``: only then does an engagement bot start the inference process
        #: (a runtime assembled by hand, as some tests do, starts no process of its own).
        self._entered = False
        self.detector = FaceDetector(face_settings)
        self._detectors = FaceDetectors(self.detector, settings=face_settings)
        self.attention = attention
        if num_media_workers is None:
            num_media_workers = num_media_workers_from_env()
        if num_media_workers < 1:
            raise ValueError(f"Expected num_media_workers >= 1. Received: {num_media_workers}")
        self.media = (
            MediaWorkers(num_media_workers, face_settings=face_settings)
            if num_media_workers > 1
            else None
        )
        factories = connector_factories or [janus_connector]
        # The Janus connector gets the media workers (the built-in room decodes in-process).
        self.connector_factories: list[ConnectorFactory] = [
            functools.partial(janus_connector, media=self.media)
            if factory is janus_connector
            else factory
            for factory in factories
        ]
        self._num_threads = num_detection_threads
        self.max_bots = max_bots
        self._executor: ThreadPoolExecutor | None = None
        self.writer: Writer | None = None
        self._bots: dict[str, BotHandle] = {}

    async def __aenter__(self) -> BotRuntime:
        self.writer = self.storage.writer()
        self._executor = ThreadPoolExecutor(self._num_threads, thread_name_prefix="faces")
        self._entered = True
        if self.mode == "engagement":
            await self._start_scoring()
        if self.media is not None:
            await self.media.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stops every bot, then the media workers, the scoring hub, the thread pool and the
        writer — each step even when an earlier one failed or timed out (a writer left open
        keeps its thread, and with it the process, alive); the first error is raised last."""
        steps: list[Callable[[], Awaitable[object]]] = [
            *(functools.partial(self.stop_bot, bot_id) for bot_id in list(self._bots)),
        ]
        if self.media is not None:
            steps.append(self.media.aclose)
        steps.append(self.scoring.aclose)  # a no-op when it never started
        if self._executor is not None:
            steps.append(functools.partial(asyncio.to_thread, self._executor.shutdown, True))
        if self.writer is not None:
            steps.append(functools.partial(asyncio.to_thread, self.writer.close))
        first_error: BaseException | None = None
        for step in steps:
            try:
                await step()
            except Exception as error:
                logger.exception("shutdown step %r failed; going on", step)
                first_error = first_error or error
        if first_error is not None:
            raise first_error

    @property
    def scoring_started(self) -> bool:
        """Whether the inference process was started (never, for attention-only bots)."""
        return self._scoring_started

    async def _start_scoring(self) -> None:
        async with self._scoring_lock:
            if not self._scoring_started:
                await self.scoring.start()
                self._scoring_started = True

    def _connector(self, url: str, bot_name: str) -> tuple[MeetingConnector, str, str]:
        validate_meeting_url(url)
        for factory in self.connector_factories:
            made = factory(url, bot_name)
            if made is not None:
                return made
        raise ValueError(f"Expected a meeting URL this server can join. Received: {url[:200]!r}")

    async def start_bot(
        self,
        meeting_url: str,
        teacher: str,
        options: Mapping[str, Any] | None = None,
        teacher_code: str | None = None,
        meeting_id: str | None = None,
    ) -> BotHandle:
        """Validates, then joins in the background; the handle's state tells how it goes.
        ``meeting_id``: the stored meeting this bot continues (a restarted bot); default new.

        Raises ``ValueError`` (``OptionError`` naming the field) for bad input,
        ``DuplicateBotError`` when a bot is in that meeting already and ``TooManyBotsError``
        at ``max_bots`` running bots. Without ``teacher_code`` the session makes one."""
        assert self.writer is not None and self._executor is not None, "use `async with`"
        settings = session_settings(teacher, {"mode": self.mode, **(options or {})}, teacher_code)
        try:
            key = meeting_key(meeting_url)
        except ValueError as error:
            raise OptionError("meeting_url", str(error)) from None
        self._prune()
        for existing in self._bots.values():
            if existing.active and existing.meeting_url == key:
                raise DuplicateBotError(existing.id, key)
        running = sum(1 for handle in self._bots.values() if handle.active)
        if running >= self.max_bots:
            raise TooManyBotsError(
                f"Expected fewer than {self.max_bots} bots running on this server. "
                f"Received: a request for one more ({running} running)"
            )
        connector, platform, room = self._connector(meeting_url, settings.bot_name)
        settings = replace(settings, platform=platform, room=room)
        if self.attention is not None:
            settings = replace(settings, alerts=replace(settings.alerts, attention=self.attention))
        if settings.reads_emotions and self._entered:
            await self._start_scoring()
        session = MeetingSession(
            connector,
            settings,
            self.writer,
            self.scoring if settings.reads_emotions else NoScoring(),
            self._detectors.get(settings.face_stage),
            self._executor,
            self.live,
            meeting_id=meeting_id,
        )
        bot_id = uuid.uuid4().hex[:12]
        task = asyncio.create_task(self._run(bot_id, session), name=f"bot {bot_id}")
        handle = BotHandle(bot_id, key, settings.teacher, session, task)
        self._bots[bot_id] = handle
        return handle

    async def _run(self, bot_id: str, session: MeetingSession) -> None:
        try:
            await session.run()
        except Exception as error:  # MeetingError, OSError, ValueError, or a bug of ours
            logger.error("bot %s could not join: %s", bot_id, error)
            handle = self._bots[bot_id]
            handle.outcome = failure_outcome(error)
            handle.error = (
                str(error) if isinstance(error, MeetingErrors) else handle.outcome.message
            )
            # The failure is why it left: a later DELETE must not read as "asked to leave".
            session.stop_reason = session.stop_reason or str(error)
            with contextlib.suppress(Exception):
                await session.connector.leave()

    def _prune(self) -> None:
        """Forgets the oldest finished bots beyond ``MAX_FINISHED_BOTS``."""
        finished = [handle for handle in self._bots.values() if not handle.active]
        for handle in finished[: max(0, len(finished) - MAX_FINISHED_BOTS)]:
            del self._bots[handle.id]

    def bots(self) -> list[BotHandle]:
        return list(self._bots.values())

    def get(self, bot_id: str) -> BotHandle | None:
        return self._bots.get(bot_id)

    async def stop_bot(self, bot_id: str, reason: str = "asked to leave") -> bool:
        handle = self._bots.get(bot_id)
        if handle is None:
            return False
        if not handle.active:  # failed or ended already: it keeps its own reason
            return True
        await handle.session.stop(reason)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(handle.task), 15)
        return True
