"""``classpulse serve --launcher ray``: each bot a detached, named Ray actor; the server relays.

The server keeps the REST API, the dashboard, ``/metrics`` and the webhooks. ``start`` checks the
request as the local runtime does, makes the meeting id and teacher code once (every incarnation
of the actor reuses them) and creates ``BotActor`` named by the bot id in the ``classpulse``
namespace, reserving ``Settings.ray_num_cpus`` and allowing ``Settings.ray_max_restarts``. One
follower task per bot long-polls its actor (``poll``): the status becomes ``BotInfo`` and
``/metrics`` (``bot.launch.ray_metrics``), the live events go into the server's ``LiveFeed`` —
so the dashboard, the SSE stream and a bot's webhook lifecycle (``bot.web.bot_lifecycle``, as
for a local bot) see the bot wherever it runs. When the actor ends (or ``stop`` made it leave)
the follower drains the last events and kills it for good.

Actors outlive the server: a server that starts (after a crash, or a new one on the same
cluster and database) adopts the running ones (``adopt``) and follows them from their newest
event on, webhooks included (the URL and secret travel in the actor's ``BotSpec``).
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
from typing import Any

from bot.bot_options import DuplicateBotError, OptionError, TooManyBotsError, session_settings
from bot.launch import RAY_MISSING, RAY_NAMESPACE
from bot.launch.remote_bot import ACTOR_DIED, RemoteBot
from bot.launch.spec import ActorStatus, BotSpec, PollAnswer, ScoringFigures
from bot.live import LiveFeed
from bot.outcomes import BotCode
from bot.settings import Settings
from bot.web.bot_lifecycle import BotLifecycle
from bot.web.bots import BotInfo, BotManager, BotsUnavailableError, Webhook, WebhookDeliveries
from bot.web.metrics import Metrics
from bot.web.webhooks import WebhookSender
from storage import new_meeting_id

logger = logging.getLogger(__name__)

#: Seconds one poll waits on the actor for news (the dashboard's latency is about the event's).
POLL_WAIT_S = 1.0
#: Seconds an actor may be unreachable (Ray restarting it, a node starting a worker, TensorFlow
#: loading) before the bot is shown failed.
MAX_UNREACHABLE_S = 120.0
#: Seconds ``stop`` waits for the actor to leave and flush its writer.
STOP_TIMEOUT_S = 40.0
#: Seconds a found actor may take to say what it runs before it is left alone (one being
#: restarted by Ray answers once its new incarnation is up).
ADOPT_TIMEOUT_S = 30.0
#: Finished bots remembered for ``GET /api/bots``.
MAX_FINISHED_BOTS = 50


class RayCalls:
    """The cluster calls the manager makes beside the actors' own methods (a test passes a
    fake with the same attributes)."""

    def __init__(self) -> None:
        import ray

        self._ray = ray
        #: Any failure of a call to an actor; the actor's death (Ray may restart it).
        self.errors: tuple[type[BaseException], ...] = (ray.exceptions.RayError,)
        self.actor_errors: tuple[type[BaseException], ...] = (ray.exceptions.RayActorError,)

    def names(self) -> list[str]:
        """The named actors of the ``classpulse`` namespace, alive or being restarted."""
        found = self._ray.util.list_named_actors(all_namespaces=True)
        return [entry["name"] for entry in found if entry["namespace"] == RAY_NAMESPACE]

    def get(self, name: str) -> Any | None:
        """The actor named ``name``; ``None`` once Ray gave it up (its name is freed)."""
        try:
            return self._ray.get_actor(name, namespace=RAY_NAMESPACE)
        except ValueError:
            return None

    def kill(self, actor: Any) -> None:
        self._ray.kill(actor, no_restart=True)


class RayBotManager:
    """The ``BotManager`` of ``--launcher ray``."""

    def __init__(self, settings: Settings, feed: LiveFeed, actor_class: Any, calls: Any) -> None:
        self.settings = settings
        self.feed = feed
        self.actor_class = actor_class
        #: ``RayCalls`` (or a test's fake).
        self.calls = calls
        self._bots: dict[str, RemoteBot] = {}
        self._lock = asyncio.Lock()
        #: Counters of the bots forgotten (pruned): ``/metrics`` totals never go down.
        self.retired = ScoringFigures()
        self._retired_deliveries = WebhookDeliveries()

    async def start(
        self,
        meeting_url: str,
        teacher: str,
        options: dict[str, Any],
        teacher_code: str | None = None,
        webhook: Webhook | None = None,
    ) -> BotInfo:
        from bot.runtime import meeting_key

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
                webhook_url=None if webhook is None else webhook.url,
                webhook_secret="" if webhook is None else webhook.secret,
            )
            actor = await asyncio.to_thread(self._create, spec)
            bot = RemoteBot(
                spec, actor, ActorStatus("starting", spec.meeting_id, spec.teacher_code)
            )
            self._watch(bot)
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

    def _watch(self, bot: RemoteBot, *, adopted: bool = False) -> None:
        """Follows ``bot`` from now on, its webhooks too (nothing awaited in between: the
        lifecycle listens before the follower publishes anything)."""
        self._bots[bot.spec.bot_id] = bot
        bot.follower = asyncio.create_task(self._follow(bot), name=f"ray bot {bot.spec.bot_id}")
        if bot.spec.webhook_url is not None:
            sender = WebhookSender(bot.spec.webhook_url, bot.spec.webhook_secret)
            in_meeting = adopted and bot.status.state != "starting"
            bot.lifecycle = BotLifecycle(
                bot, self.feed, sender, adopted=adopted, in_meeting=in_meeting
            )

    async def adopt(self) -> builtins.list[str]:
        """Follows the actors of the ``classpulse`` namespace that no server follows (a
        previous server crashed or was replaced) and that write into this server's database;
        the ids adopted."""
        names = await asyncio.to_thread(self.calls.names)
        found = await asyncio.gather(
            *(self._adopt(name) for name in names if name not in self._bots)
        )
        adopted = [bot_id for bot_id in found if bot_id is not None]
        if adopted:
            logger.warning(
                "adopted %d running bot(s) from the Ray cluster: %s", len(adopted), adopted
            )
        return adopted

    async def _adopt(self, name: str) -> str | None:
        actor = await asyncio.to_thread(self.calls.get, name)
        if actor is None:
            return None
        try:
            spec = await asyncio.wait_for(actor.describe.remote(), ADOPT_TIMEOUT_S)
            answer: PollAnswer = await asyncio.wait_for(
                actor.poll.remote(None, -1, 0.0), ADOPT_TIMEOUT_S
            )
        except (TimeoutError, *self.calls.errors) as error:
            logger.warning("Ray actor %s not adopted: it did not answer (%s)", name, error)
            return None
        if not isinstance(spec, BotSpec) or spec.database_url != self.settings.database_url:
            logger.info("Ray actor %s not adopted: another server's (another database)", name)
            return None
        async with self._lock:
            if spec.bot_id in self._bots:
                return None
            after = max((seq for seq, _ in answer.events), default=-1)
            bot = RemoteBot(
                spec,
                actor,
                answer.status,
                num_incarnations=1,
                incarnation=answer.incarnation,
                after=after,
            )
            self._watch(bot, adopted=True)
        return spec.bot_id

    def list(self) -> builtins.list[BotInfo]:
        infos = [bot.info() for bot in self._bots.values()]
        return sorted(infos, key=lambda info: info.started_at, reverse=True)

    def get(self, bot_id: str) -> BotInfo | None:
        bot = self._bots.get(bot_id)
        return None if bot is None else bot.info()

    async def stop(self, bot_id: str, reason: str = "asked to leave") -> bool:
        bot = self._bots.get(bot_id)
        if bot is None:
            return False
        if bot.done.is_set():  # ended or failed already: it keeps its own reason
            return True
        try:
            bot.status = await asyncio.wait_for(bot.actor.stop.remote(reason), STOP_TIMEOUT_S)
        except (TimeoutError, *self.calls.errors) as error:
            logger.warning("bot %s did not leave cleanly: %s", bot_id, error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(bot.done.wait(), POLL_WAIT_S * 5)
        await self._kill(bot)
        return True

    def subscribe(self, meeting_id: str) -> AsyncIterator[dict[str, Any]]:
        return self.feed.subscribe(meeting_id)

    async def aclose(self) -> None:
        await asyncio.gather(*(self.stop(bot_id) for bot_id in list(self._bots)))
        # The bots' last events, delivered side by side (each bounded by its drain time).
        lifecycles = [bot.lifecycle for bot in self._bots.values() if bot.lifecycle is not None]
        await asyncio.gather(*(lifecycle.aclose() for lifecycle in lifecycles))

    def bots(self) -> builtins.list[RemoteBot]:
        return list(self._bots.values())

    def webhook_totals(self) -> WebhookDeliveries:
        """Every bot's webhook deliveries by this server, forgotten bots included."""
        parts = [self._retired_deliveries, *(bot.deliveries() for bot in self._bots.values())]
        return WebhookDeliveries.summed(part for part in parts if part is not None)

    # -- relaying -------------------------------------------------------------------------

    async def _follow(self, bot: RemoteBot) -> None:
        incarnation, after = bot.incarnation, bot.after
        unreachable_since: float | None = None
        try:
            while True:
                try:
                    answer: PollAnswer = await bot.actor.poll.remote(
                        incarnation, after, POLL_WAIT_S
                    )
                except self.calls.actor_errors as error:
                    # Ray restarts the actor (a new incarnation answers) or it is gone for good.
                    now = time.monotonic()
                    unreachable_since = unreachable_since or now
                    gone = not await asyncio.to_thread(self._restartable, bot)
                    if gone or now - unreachable_since > MAX_UNREACHABLE_S:
                        self._fail(bot, f"the bot's Ray actor died: {error}")
                        return
                    await asyncio.sleep(0.5)
                    continue
                unreachable_since = None
                if answer.incarnation != incarnation:
                    if incarnation is not None:
                        bot.new_incarnation(answer.status)
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
        return self.calls.get(bot.spec.bot_id) is not None

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
            code=BotCode.INTERNAL_ERROR.value,
            message=ACTOR_DIED,
            figures=status.figures,
        )
        self.feed.publish(status.meeting_id, {"type": "ended", "reason": error})

    async def _kill(self, bot: RemoteBot) -> None:
        with contextlib.suppress(Exception):  # already dead: nothing to do
            await asyncio.to_thread(self.calls.kill, bot.actor)

    def _prune(self) -> None:
        finished = [bot for bot in self._bots.values() if bot.done.is_set()]
        gone = finished[: max(0, len(finished) - MAX_FINISHED_BOTS)]
        if gone:
            self.retired = ScoringFigures.merged([self.retired, *(bot.figures() for bot in gone)])
            deliveries = [bot.deliveries() for bot in gone]
            self._retired_deliveries = WebhookDeliveries.summed(
                [self._retired_deliveries, *(part for part in deliveries if part is not None)]
            )
        for bot in gone:
            del self._bots[bot.spec.bot_id]


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
    """Connected to the cluster for the server's lifetime (following the actors a previous
    server left running); every bot stopped at the end."""
    started = await asyncio.to_thread(connect, settings)  # RAY_MISSING when not installed
    import ray

    from bot.launch.actor import BotActor
    from bot.launch.ray_metrics import RayCollector

    manager = RayBotManager(settings, feed, ray.remote(BotActor), RayCalls())
    remove = metrics.add_collector(RayCollector(manager, metrics))
    try:
        await manager.adopt()
        yield manager
    finally:
        remove()
        await manager.aclose()
        if started:
            await asyncio.to_thread(ray.shutdown)
