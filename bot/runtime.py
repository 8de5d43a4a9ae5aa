"""The bot runtime of one process: storage writer, inference, detector, and the running bots.

``classpulse join`` runs one bot with it; ``classpulse serve`` runs many (``POST /api/bots``).
Every bot shares one writer and one inference process, so the model batches across meetings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from bot.alerts import AlertSettings
from bot.live import LiveFeed
from bot.meetings.protocol import MeetingConnector, MeetingError
from bot.scoring import ScoringHub
from bot.session import MeetingSession, SessionSettings
from engine.faces import FaceDetector
from engine.inference import InferenceSettings
from storage import Storage, Writer

logger = logging.getLogger(__name__)

#: Builds a connector for a meeting URL; returns None when the URL is not of its kind.
ConnectorFactory = Callable[[str, str], tuple[MeetingConnector, str, str] | None]

#: Options a caller may set per bot (``POST /api/bots`` ``options``, ``classpulse join`` flags).
ALERT_OPTIONS = {
    "alert_after_s": "sustained_s",
    "alert_cooldown_s": "cooldown_s",
    "alert_bored": "alert_bored",
    "class_share": "class_share",
}
SESSION_OPTIONS = {"title", "bot_name", "analysis_fps", "empty_grace_s"}


def validate_meeting_url(url: str) -> None:
    """Raises ``ValueError`` unless ``url`` is a meeting URL of a known kind, before any start."""
    from bot.meetings.url import parse_any_meeting_url

    parse_any_meeting_url(url)


def janus_connector(url: str, bot_name: str) -> tuple[MeetingConnector, str, str] | None:
    """``janus+ws://…`` → (connector, platform, room)."""
    if not url.lower().startswith("janus+"):
        return None
    from bot.meetings.janus import JanusConnector
    from bot.meetings.url import parse_meeting_url

    parsed = parse_meeting_url(url)
    return JanusConnector(parsed, display_name=bot_name), "janus", str(parsed.room)


def session_settings(teacher: str, options: Mapping[str, Any]) -> SessionSettings:
    """Validated per-bot settings; unknown options are refused by name."""
    if not isinstance(teacher, str) or not teacher.strip():
        raise ValueError(f"Expected the teacher's display name. Received: {teacher!r}")
    unknown = set(options) - set(ALERT_OPTIONS) - SESSION_OPTIONS
    if unknown:
        known = sorted(set(ALERT_OPTIONS) | SESSION_OPTIONS)
        raise ValueError(f"Expected options among {known}. Received: {sorted(unknown)}")
    alerts = AlertSettings(
        **{ALERT_OPTIONS[k]: v for k, v in options.items() if k in ALERT_OPTIONS}
    )
    settings = SessionSettings(teacher=teacher.strip(), alerts=alerts)
    session_values = {k: v for k, v in options.items() if k in SESSION_OPTIONS}
    try:
        return replace(settings, **session_values)
    except TypeError as error:
        raise ValueError(f"Expected valid session options. Received: {session_values}") from error


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
    ) -> None:
        self.storage = storage
        self.live = live or LiveFeed()
        self.scoring = ScoringHub(inference)
        self.detector = FaceDetector()
        self.connector_factories = connector_factories or [janus_connector]
        self._num_threads = num_detection_threads
        self._executor: ThreadPoolExecutor | None = None
        self.writer: Writer | None = None
        self._bots: dict[str, BotHandle] = {}

    async def __aenter__(self) -> BotRuntime:
        self.writer = self.storage.writer()
        self._executor = ThreadPoolExecutor(self._num_threads, thread_name_prefix="faces")
        await self.scoring.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for handle in list(self._bots.values()):
            await self.stop_bot(handle.id)
        await self.scoring.aclose()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close)

    def _connector(self, url: str, bot_name: str) -> tuple[MeetingConnector, str, str]:
        validate_meeting_url(url)
        for factory in self.connector_factories:
            made = factory(url, bot_name)
            if made is not None:
                return made
        raise ValueError(f"Expected a meeting URL this server can join. Received: {url[:200]!r}")

    async def start_bot(
        self, meeting_url: str, teacher: str, options: Mapping[str, Any] | None = None
    ) -> BotHandle:
        """Validates, then joins in the background; the handle's state tells how it goes."""
        assert self.writer is not None and self._executor is not None, "use `async with`"
        settings = session_settings(teacher, options or {})
        connector, platform, room = self._connector(meeting_url, settings.bot_name)
        settings = replace(settings, platform=platform, room=room)
        session = MeetingSession(
            connector, settings, self.writer, self.scoring, self.detector, self._executor, self.live
        )
        bot_id = uuid.uuid4().hex[:12]
        task = asyncio.create_task(self._run(bot_id, session), name=f"bot {bot_id}")
        redacted = getattr(getattr(connector, "url", None), "redacted", None)
        shown = redacted() if callable(redacted) else meeting_url.split("?")[0]
        handle = BotHandle(bot_id, shown, settings.teacher, session, task)
        self._bots[bot_id] = handle
        return handle

    async def _run(self, bot_id: str, session: MeetingSession) -> None:
        try:
            await session.run()
        except (MeetingError, OSError, ValueError) as error:
            logger.error("bot %s could not join: %s", bot_id, error)
            self._bots[bot_id].error = str(error)
            with contextlib.suppress(Exception):
                await session.connector.leave()

    def bots(self) -> list[BotHandle]:
        return list(self._bots.values())

    def get(self, bot_id: str) -> BotHandle | None:
        return self._bots.get(bot_id)

    async def stop_bot(self, bot_id: str, reason: str = "asked to leave") -> bool:
        handle = self._bots.get(bot_id)
        if handle is None:
            return False
        await handle.session.stop(reason)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(handle.task), 15)
        return True
