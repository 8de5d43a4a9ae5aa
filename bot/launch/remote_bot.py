"""The server's view of one bot's Ray actor: what the API shows, what its webhooks read.

``RemoteBot`` is a ``BotInfo`` source (``info``) and a ``bot.web.bot_lifecycle.LifecycleBot``:
its ``task`` is the follower that relays the actor's events into the server's feed, so the
lifecycle sends the same webhooks as for a bot of the local runtime, from the same feed.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.launch.spec import ActorStatus, BotSpec, ScoringFigures
from bot.outcomes import BotCode, end_outcome
from bot.web.bots import BotInfo, BotState, WebhookDeliveries

if TYPE_CHECKING:
    from bot.web.bot_lifecycle import BotLifecycle

#: The sentence of a bot whose actor died for good (Ray gave up restarting it, or never
#: answered again).
ACTOR_DIED = (
    "The bot's Ray actor died and was not restarted (details in the classpulse server's log)."
)


@dataclass
class RemoteBot:
    """One actor as the server follows it."""

    spec: BotSpec
    actor: Any
    status: ActorStatus
    follower: asyncio.Task[None] | None = None
    #: Incarnations seen (1: never restarted, or adopted by this server).
    num_incarnations: int = 0
    #: Set when the follower saw the actor's last event (or gave it up).
    done: asyncio.Event = field(default_factory=asyncio.Event)
    #: Where the follower starts reading the actor's live events: a new bot from the first of
    #: its first incarnation; an adopted one after the newest (the earlier ones are stored,
    #: and a previous server relayed them).
    incarnation: str | None = None
    after: int = -1
    #: The counters of this bot's earlier incarnations (a restarted actor counts from zero).
    carried: ScoringFigures = field(default_factory=ScoringFigures)
    #: Its webhook deliveries, when it was invited with a ``webhook_url``.
    lifecycle: BotLifecycle | None = None

    # -- LifecycleBot ---------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.spec.bot_id

    @property
    def meeting_id(self) -> str:
        return self.spec.meeting_id

    @property
    def meeting_url(self) -> str:
        return self.spec.meeting_key

    @property
    def task(self) -> asyncio.Future[Any]:
        if self.follower is None:
            raise RuntimeError(
                f"Expected a followed bot. Received: bot {self.spec.bot_id} before its follower"
            )
        return self.follower

    def final_outcome(self) -> tuple[bool, str, str] | None:
        """(failed, code, sentence) once the actor ended or failed, as its session said."""
        status = self.status
        if status.state not in ("ended", "failed"):
            return None
        failed = status.state == "failed"
        if status.code is not None:
            return failed, status.code, status.message or ""
        if failed:
            return True, BotCode.INTERNAL_ERROR.value, ACTOR_DIED
        outcome = end_outcome(status.stop_reason)
        return False, outcome.code.value, outcome.message

    # -- the API and /metrics -------------------------------------------------------------

    def info(self) -> BotInfo:
        status = self.status
        try:
            state = BotState(status.state)
        except ValueError:
            state = BotState.FAILED
        outcome = None if state.active else self.final_outcome()
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
            code=None if outcome is None else outcome[1],
            message=None if outcome is None else outcome[2],
            webhook_url=self.spec.webhook_url,
            webhook=self.deliveries(),
        )

    def deliveries(self) -> WebhookDeliveries | None:
        """How this server's deliveries of its webhooks went (``None``: no webhook)."""
        if self.lifecycle is None:
            return None
        return self.lifecycle.sender.stats.frozen()

    def new_incarnation(self, status: ActorStatus) -> None:
        """Ray restarted the actor: the dead incarnation's counters are carried over."""
        dead = dataclasses.replace(self.status.figures, latency_p50_s=0.0, latency_p95_s=0.0)
        self.carried = ScoringFigures.merged([self.carried, dead])
        self.status = status

    def figures(self) -> ScoringFigures:
        """Every incarnation's counters; the latency of the current one."""
        return ScoringFigures.merged([self.carried, self.status.figures])
