"""A fake Ray cluster for the launcher's fast tests: the few things ``RayBotManager`` asks of Ray.

``FakeActorClass.options(...).remote(spec)`` makes a ``FakeActor`` and registers it by name in a
``FakeCluster`` (what ``RayCalls`` reads: names, get, kill). A fake actor answers ``poll``,
``stop`` and ``describe`` as ``bot.launch.actor.BotActor`` does, from a status and live events
the test sets; ``die``/``restart`` play Ray restarting it (a new incarnation, counters at zero).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from bot.launch.spec import ActorStatus, BotSpec, PollAnswer


class ActorDiedError(Exception):
    """What a call to a dead actor raises (Ray's ``RayActorError``)."""


class _Method:
    def __init__(self, call: Callable[..., Awaitable[Any]]) -> None:
        self._call = call

    def remote(self, *args: Any) -> Awaitable[Any]:
        return self._call(*args)


class FakeActor:
    def __init__(self, spec: BotSpec, cluster: FakeCluster) -> None:
        self.spec = spec
        self.cluster = cluster
        self.incarnation = uuid.uuid4().hex[:8]
        self.status = ActorStatus("starting", spec.meeting_id, spec.teacher_code, node_id="n1")
        self.events: list[tuple[int, dict[str, Any]]] = []
        self.dead = False
        self.stopped_with: str | None = None
        self._changed = asyncio.Event()
        self.poll = _Method(self._poll)
        self.stop = _Method(self._stop)
        self.describe = _Method(self._describe)

    # -- what the test does ---------------------------------------------------------------

    def update(self, **changes: Any) -> None:
        self.status = dataclasses.replace(self.status, **changes)
        self._changed.set()

    def publish(self, event: dict[str, Any]) -> None:
        self.events.append((len(self.events), event))
        self._changed.set()

    def die(self) -> None:
        self.dead = True

    def restart(self, **changes: Any) -> None:
        """Ray's new incarnation: same spec, its own events and counters from zero."""
        self.dead = False
        self.incarnation = uuid.uuid4().hex[:8]
        self.events = []
        self.status = ActorStatus(
            "starting", self.spec.meeting_id, self.spec.teacher_code, node_id="n2", restarted=True
        )
        self.update(**changes)

    # -- what the manager calls -----------------------------------------------------------

    async def _poll(self, incarnation: str | None, after: int, wait_s: float) -> PollAnswer:
        if self.dead:
            raise ActorDiedError(f"actor {self.spec.bot_id} died")
        if incarnation != self.incarnation:
            after = -1
        if not any(seq > after for seq, _ in self.events) and not self.status.closed:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait_s)
        if self.dead:
            raise ActorDiedError(f"actor {self.spec.bot_id} died")
        events = [(seq, event) for seq, event in self.events if seq > after]
        return PollAnswer(self.status, self.incarnation, events)

    async def _stop(self, reason: str) -> ActorStatus:
        self.stopped_with = reason
        self.update(state="ended", stop_reason=reason, closed=True, code="stopped", message="Left.")
        return self.status

    async def _describe(self) -> BotSpec:
        return self.spec


class FakeCluster:
    """Named actors, as ``bot.launch.ray_manager.RayCalls`` sees them."""

    errors: tuple[type[BaseException], ...] = (ActorDiedError,)
    actor_errors: tuple[type[BaseException], ...] = (ActorDiedError,)

    def __init__(self) -> None:
        self.actors: dict[str, FakeActor] = {}
        self.killed: list[str] = []

    def names(self) -> list[str]:
        return list(self.actors)

    def get(self, name: str) -> FakeActor | None:
        return self.actors.get(name)

    def kill(self, actor: FakeActor) -> None:
        self.killed.append(actor.spec.bot_id)
        self.actors.pop(actor.spec.bot_id, None)


class FakeActorClass:
    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster
        self.made: list[tuple[dict[str, Any], BotSpec]] = []
        self._options: dict[str, Any] = {}

    def options(self, **options: Any) -> FakeActorClass:
        self._options = options
        return self

    def remote(self, spec: BotSpec) -> FakeActor:
        self.made.append((self._options, spec))
        actor = FakeActor(spec, self.cluster)
        self.cluster.actors[spec.bot_id] = actor
        return actor
