"""``classpulse serve --launcher ray``: each bot a detached, named Ray actor; the server relays.

The server keeps the REST API, the dashboard and ``/metrics``. ``start`` checks the request as
the local runtime does, makes the meeting id and teacher code once (every incarnation of the
actor reuses them) and creates ``BotActor`` named by the bot id in the ``classpulse`` namespace,
reserving ``Settings.ray_num_cpus`` and allowing ``Settings.ray_max_restarts``. One follower task
per bot long-polls its actor (``poll``): the status becomes ``BotInfo`` and ``/metrics`` (summed
and per node), the live events go into the server's ``LiveFeed`` — so the dashboard, the SSE
stream and anything subscribed to the feed see the bot wherever it runs. When the actor ends
(or ``stop`` made it leave) the follower drains the last events and kills it for good.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from bot.bot_options import DuplicateBotError, OptionError, TooManyBotsError, session_settings
from bot.launch import RAY_MISSING, RAY_NAMESPACE
from bot.launch.spec import ActorStatus, BotSpec, PollAnswer
from bot.live import LiveFeed
from bot.settings import Settings
from bot.web.bots import BotInfo, BotManager, BotState, BotsUnavailableError
from bot.web.metrics import Gauge, Metrics
from storage import new_meeting_id

logger = logging.getLogger(__name__)

#: Seconds one poll waits on the actor for news (the dashboard's latency is about the event's).
POLL_WAIT_S = 1.0
#: Seconds an actor may be unreachable (Ray restarting it, a node starting a worker, TensorFlow
#: loading) before the bot is shown failed.
MAX_UNREACHABLE_S = 120.0
#: Seconds ``stop`` waits for the actor to leave and flush its writer.
STOP_TIMEOUT_S = 40.0
#: Finished bots remembered for ``GET /api/bots``.
MAX_FINISHED_BOTS = 50


@dataclass
class RemoteBot:
    """The server's view of one actor."""

    spec: BotSpec
    actor: Any
    status: ActorStatus
    follower: asyncio.Task[None] | None = None
    #: Incarnations seen (1: never restarted).
    num_incarnations: int = 0
    #: Set when the follower saw the actor's last event (or gave it up).
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def info(self) -> BotInfo:
        status = self.status
        try:
            state = BotState(status.state)
        except ValueError:
            state = BotState.FAILED
        return BotInfo(
            bot_id=self.spec.bot_id,
            meeting_url=self.spec.meeting_key,
            teacher=self.spec.teacher,
            teacher_code=status.teacher_code,
            state=state,
            started_at=self.spec.started_at,
            meeting_id=status.meeting_id,
            error=status.error,
            stop_reason=status.stop_reason,
            num_alerts=status.num_alerts,
            paused=status.paused,
        )


class RayBotManager:
    """The ``BotManager`` of ``--launcher ray``."""

    def __init__(self, settings: Settings, feed: LiveFeed, actor_class: Any) -> None:
        self.settings = settings
        self.feed = feed
        self.actor_class = actor_class
        self._bots: dict[str, RemoteBot] = {}
        self._lock = asyncio.Lock()

    async def start(
        self,
        meeting_url: str,
        teacher: str,
        options: dict[str, Any],
        teacher_code: str | None = None,
        webhook: Any = None,
    ) -> BotInfo:
        from bot.runtime import meeting_key

        if webhook is not None:  # the lifecycle would have to be relayed too: not yet
            raise OptionError(
                "webhook_url",
                "Expected no webhook_url with --launcher ray (webhooks are sent by bots that run "
                "in the server: --launcher local). Received: a webhook_url",
            )
        # The server's default mode unless the options name one: the actor must know it before
        # its runtime starts (an attention bot never starts an inference process).
        options = {"mode": self.settings.mode, **options}
        session = session_settings(teacher, options, teacher_code)  # OptionError on bad input
        try:
            key = meeting_key(meeting_url)
        except ValueError as error:
            raise OptionError("meeting_url", str(error)) from None
        if not meeting_url.strip().lower().startswith("janus+"):
            raise OptionError(
                "meeting_url",
                "Expected a janus+ws:// or janus+wss:// meeting URL: with --launcher ray bots "
                "run on the cluster, and the built-in room lives in the server (use --launcher "
                f"local for it). Received: {key[:200]!r}",
            )
        async with self._lock:
            self._prune()
            active = [bot for bot in self._bots.values() if bot.info().state.active]
            for bot in active:
                if bot.spec.meeting_key == key:
                    raise DuplicateBotError(bot.spec.bot_id, key)
            if len(active) >= self.settings.max_bots:
                raise TooManyBotsError(
                    f"Expected fewer than {self.settings.max_bots} bots running on this server. "
                    f"Received: a request for one more ({len(active)} running)"
                )
            spec = BotSpec(
                bot_id=uuid.uuid4().hex[:12],
                meeting_url=meeting_url,
                meeting_key=key,
                teacher=session.teacher,
                options=dict(options),
                teacher_code=session.teacher_code,
                meeting_id=new_meeting_id(),
                database_url=self.settings.database_url,
                started_at=time.time(),
                num_media_workers=max(1, int(self.settings.ray_num_cpus)),
            )
            actor = await asyncio.to_thread(self._create, spec)
            bot = RemoteBot(
                spec, actor, ActorStatus("starting", spec.meeting_id, spec.teacher_code)
            )
            self._bots[spec.bot_id] = bot
            bot.follower = asyncio.create_task(self._follow(bot), name=f"ray bot {spec.bot_id}")
            return bot.info()

    def _create(self, spec: BotSpec) -> Any:
        try:
            return self.actor_class.options(
                name=spec.bot_id,
                namespace=RAY_NAMESPACE,
                lifetime="detached",
                num_cpus=self.settings.ray_num_cpus,
                max_restarts=self.settings.ray_max_restarts,
                max_task_retries=0,
            ).remote(spec)
        except Exception as error:  # the cluster refused (gone, out of resources): 503
            raise BotsUnavailableError(
                f"Expected a Ray cluster that takes a new actor. Received: {error}"
            ) from error

    def list(self) -> list[BotInfo]:
        infos = [bot.info() for bot in self._bots.values()]
        return sorted(infos, key=lambda info: info.started_at, reverse=True)

    def get(self, bot_id: str) -> BotInfo | None:
        bot = self._bots.get(bot_id)
        return None if bot is None else bot.info()

    async def stop(self, bot_id: str, reason: str = "asked to leave") -> bool:
        import ray

        bot = self._bots.get(bot_id)
        if bot is None:
            return False
        if bot.done.is_set():  # ended or failed already: it keeps its own reason
            return True
        try:
            bot.status = await asyncio.wait_for(bot.actor.stop.remote(reason), STOP_TIMEOUT_S)
        except (TimeoutError, ray.exceptions.RayError) as error:
            logger.warning("bot %s did not leave cleanly: %s", bot_id, error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(bot.done.wait(), POLL_WAIT_S * 5)
        await self._kill(bot)
        return True

    def subscribe(self, meeting_id: str) -> AsyncIterator[dict[str, Any]]:
        return self.feed.subscribe(meeting_id)

    async def aclose(self) -> None:
        await asyncio.gather(*(self.stop(bot_id) for bot_id in list(self._bots)))

    def statuses(self) -> builtins.list[ActorStatus]:
        return [bot.status for bot in self._bots.values()]

    # -- relaying -------------------------------------------------------------------------

    async def _follow(self, bot: RemoteBot) -> None:
        import ray

        incarnation: str | None = None
        after = -1
        unreachable_since: float | None = None
        try:
            while True:
                try:
                    answer: PollAnswer = await bot.actor.poll.remote(
                        incarnation, after, POLL_WAIT_S
                    )
                except ray.exceptions.RayActorError as error:
                    # Ray restarts the actor (a new incarnation answers) or it is gone for good.
                    now = time.monotonic()
                    unreachable_since = unreachable_since or now
                    if not self._restartable(bot) or now - unreachable_since > MAX_UNREACHABLE_S:
                        self._fail(bot, f"the bot's Ray actor died: {error}")
                        return
                    await asyncio.sleep(0.5)
                    continue
                unreachable_since = None
                if answer.incarnation != incarnation:
                    incarnation, after = answer.incarnation, -1
                    bot.num_incarnations += 1
                bot.status = answer.status
                for seq, event in answer.events:
                    self.feed.publish(bot.spec.meeting_id, event)
                    after = seq
                if answer.status.finished:
                    return
        finally:
            bot.done.set()
            if bot.status.finished or bot.status.state == "failed":
                await self._kill(bot)

    def _restartable(self, bot: RemoteBot) -> bool:
        """False once Ray gave the actor up (its name is freed when it is dead for good)."""
        import ray

        try:
            ray.get_actor(bot.spec.bot_id, namespace=RAY_NAMESPACE)
        except ValueError:
            return False
        return True

    def _fail(self, bot: RemoteBot, error: str) -> None:
        logger.error("bot %s: %s", bot.spec.bot_id, error)
        status = bot.status
        bot.status = ActorStatus(
            "failed",
            status.meeting_id,
            status.teacher_code,
            error=error,
            stop_reason=status.stop_reason or error,
            num_alerts=status.num_alerts,
            node_id=status.node_id,
            closed=True,
        )
        self.feed.publish(status.meeting_id, {"type": "ended", "reason": error})

    async def _kill(self, bot: RemoteBot) -> None:
        import ray

        with contextlib.suppress(Exception):  # already dead: nothing to do
            await asyncio.to_thread(ray.kill, bot.actor, no_restart=True)

    def _prune(self) -> None:
        finished = [bot for bot in self._bots.values() if bot.done.is_set()]
        for bot in finished[: max(0, len(finished) - MAX_FINISHED_BOTS)]:
            del self._bots[bot.spec.bot_id]


class RayCollector:
    """``/metrics`` for bots on a cluster: the usual totals, summed over the actors' relayed
    figures, and per node (``classpulse_node_*{node="…"}``)."""

    def __init__(self, manager: RayBotManager, metrics: Metrics) -> None:
        self.manager = manager
        self.node_bots = Gauge(
            "classpulse_node_bots_running", "Bots running on each Ray node.", ("node",)
        )
        self.node_followed = Gauge(
            "classpulse_node_participants_followed",
            "Participants whose video is analysed on each Ray node.",
            ("node",),
        )
        self.node_backlog = Gauge(
            "classpulse_node_writer_backlog_rows",
            "Rows waiting in the storage writers of each Ray node's actors.",
            ("node",),
        )
        # ``Metrics`` renders every series among its attributes: the node series join them.
        for name in ("node_bots", "node_followed", "node_backlog"):
            setattr(metrics, f"ray_{name}", getattr(self, name))

    def __call__(self, metrics: Metrics) -> None:
        statuses = self.manager.statuses()
        running = [s for s in statuses if s.state == "running"]
        metrics.participants_followed.set(sum(s.num_followed for s in running))
        metrics.alerts_sent.set_total(sum(s.num_alerts for s in statuses))
        metrics.video_frames_analysed.set_total(sum(s.num_frames_analysed for s in statuses))
        metrics.writer_backlog.set(sum(s.rows_pending for s in statuses if not s.closed))
        metrics.writer_dropped.set_total(sum(s.rows_dropped for s in statuses))
        for series in (self.node_bots, self.node_followed, self.node_backlog):
            for labels, _ in series.samples():
                series.set(0.0, **dict(labels))
        for status in statuses:
            if not status.node_id or status.closed:
                continue
            node = status.node_id[:12]
            if status.state == "running":
                self.node_bots.inc(node=node)
                self.node_followed.inc(status.num_followed, node=node)
            self.node_backlog.inc(status.rows_pending, node=node)


def connect(settings: Settings) -> bool:
    """Joins ``settings.ray_address`` (or starts a local cluster); True when this call did."""
    try:
        import ray
    except ImportError:
        raise BotsUnavailableError(RAY_MISSING) from None
    if ray.is_initialized():
        return False
    ray.init(
        address=settings.ray_address,
        namespace=RAY_NAMESPACE,
        include_dashboard=False if settings.ray_address is None else None,
        logging_level=logging.WARNING,
        configure_logging=False,
    )
    return True


@asynccontextmanager
async def ray_bot_manager(
    settings: Settings, feed: LiveFeed, metrics: Metrics
) -> AsyncIterator[BotManager]:
    """Connected to the cluster for the server's lifetime; every bot stopped at the end."""
    started = await asyncio.to_thread(connect, settings)  # RAY_MISSING when not installed
    import ray

    from bot.launch.actor import BotActor

    manager = RayBotManager(settings, feed, ray.remote(BotActor))
    remove = metrics.add_collector(RayCollector(manager, metrics))
    try:
        yield manager
    finally:
        remove()
        await manager.aclose()
        if started:
            await asyncio.to_thread(ray.shutdown)
