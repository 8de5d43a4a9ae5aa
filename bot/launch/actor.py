"""One class in a Ray actor: the bot runtime of ``classpulse serve``, for a single meeting.

``BotActor`` is a plain class; ``bot.launch.ray_manager`` makes it a detached, named Ray actor
(``ray.remote``), so this module imports Ray only inside the running actor. The actor process is
a media process (aiortc): it never imports TensorFlow; the runtime spawns the inference process
beside it as the server does.

Ray calls ``__init__`` again with the same ``BotSpec`` when it restarts a dead actor: that
incarnation joins the same meeting, writes into the same stored meeting (``spec.meeting_id``),
records the gap (from the last row the dead one stored to the rejoin) as an alert row and a live
``gap`` event, and asks the teacher to claim again (the chat does not know the new bot).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
import warnings
from collections import deque
from typing import Any

from sqlalchemy import func, select

from bot.launch.spec import RESTART_GAP_KIND, ActorStatus, BotSpec, PollAnswer, ScoringFigures
from bot.live import LiveFeed
from bot.outcomes import Outcome, end_outcome, failure_outcome
from bot.web.bot_lifecycle import bot_outcome
from storage import AlertRaised, Storage
from storage import models as tables

logger = logging.getLogger(__name__)

#: Live events an actor keeps for the server to fetch; beyond it the oldest go (the dashboard
#: shows "newest wins" data; the stored rows are complete).
MAX_BUFFERED_EVENTS = 5000


def _figures(runtime: Any) -> ScoringFigures:
    """The runtime's inference and media figures (``bot.web.runtime_bots.RuntimeCollector``
    reads the same ones in a local server)."""
    media = 0 if runtime.media is None else runtime.media.num_restarts
    if not runtime.scoring_started:  # an attention bot: no inference process
        return ScoringFigures(media_worker_restarts=media)
    stats, lag = runtime.scoring.stats(), runtime.scoring.lag
    return ScoringFigures(
        crops_scored=stats.scored,
        dropped_stale=stats.dropped_stale,
        dropped_overflow=stats.dropped_overflow,
        dropped_restart=stats.dropped_restart,
        media_worker_restarts=media,
        latency_p50_s=stats.latency_p50_s,
        latency_p95_s=stats.latency_p95_s,
        lag_buckets=lag.buckets(),
        lag_total_s=lag.total_s,
        lag_count=lag.count,
    )


def last_stored_t(storage: Storage, meeting_id: str) -> float | None:
    """When the stored meeting last heard of anyone (newest sample, else its start); ``None``
    when the meeting was never stored (the dead incarnation had not joined yet)."""
    with storage.session() as session:
        started = session.execute(
            select(tables.Meeting.started_at).where(tables.Meeting.id == meeting_id)
        ).scalar_one_or_none()
        if started is None:
            return None
        newest = session.execute(
            select(func.max(tables.Sample.t))
            .join(tables.Participant, tables.Sample.participant_id == tables.Participant.id)
            .where(tables.Participant.meeting_id == meeting_id)
        ).scalar_one_or_none()
    return float(newest if newest is not None else started)


class BotActor:
    """Runs one bot from construction until its meeting ends; ``poll`` relays, ``stop`` ends."""

    def __init__(self, spec: BotSpec) -> None:
        import ray  # inside the actor: the server side imports Ray only with --launcher ray

        context = ray.get_runtime_context()
        with warnings.catch_warnings():  # Ray's own deprecation warning, inside its own code
            warnings.simplefilter("ignore")
            self.restarted = bool(context.was_current_actor_reconstructed)
        self.node_id = context.get_node_id()
        self.spec = spec
        self.incarnation = uuid.uuid4().hex[:8]
        self.live = LiveFeed()
        self._events: deque[tuple[int, dict[str, Any]]] = deque(maxlen=MAX_BUFFERED_EVENTS)
        self._next_seq = 0
        self._changed = asyncio.Event()
        self._runtime: Any = None  # bot.runtime.BotRuntime once started
        self._handle: Any = None  # bot.runtime.BotHandle once the bot started
        self._error: str | None = None
        #: Why the start failed, before any bot ran (a failure inside the bot is its own).
        self._outcome: Outcome | None = None
        self._stop_reason: str | None = None
        self._closed = False
        # An async actor's constructor runs on its event loop: the class starts now, and again
        # in every incarnation Ray makes after a failure, without waiting for the server.
        self._task = asyncio.get_running_loop().create_task(self._run(), name="bot actor")

    # -- what the server calls ------------------------------------------------------------

    async def poll(self, incarnation: str | None, after: int, wait_s: float) -> PollAnswer:
        """The status and the live events after ``after`` (of ``incarnation``; another one
        means from the start), waiting up to ``wait_s`` for something new."""
        if incarnation != self.incarnation:
            after = -1
        if not any(seq > after for seq, _ in self._events) and not self._closed:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait_s)
        events = [(seq, event) for seq, event in self._events if seq > after]
        return PollAnswer(self.status(), self.incarnation, events)

    async def describe(self) -> BotSpec:
        """What this actor runs: a server that restarted adopts the actor from it."""
        return self.spec

    async def stop(self, reason: str = "asked to leave") -> ActorStatus:
        """Leaves the meeting, flushes the writer, stops inference; the status once closed."""
        self._stop_reason = self._stop_reason or reason
        if self._runtime is not None and self._handle is not None:
            await self._runtime.stop_bot(self._handle.id, reason)
        elif not self._task.done():
            self._task.cancel()  # still starting (the model loading): nothing joined yet
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._task)
        return self.status()

    def status(self) -> ActorStatus:
        handle, runtime = self._handle, self._runtime
        base: dict[str, Any] = {
            "meeting_id": self.spec.meeting_id,
            "node_id": self.node_id,
            "pid": os.getpid(),
            "restarted": self.restarted,
            "closed": self._closed,
        }
        if runtime is not None:
            base["figures"] = _figures(runtime)
        if runtime is not None and runtime.writer is not None:
            stats = runtime.writer.stats()
            base.update(
                rows_submitted=stats.submitted,
                rows_written=stats.written,
                rows_pending=stats.pending,
                rows_dropped=stats.dropped,
            )
        if handle is None:
            if self._error is not None:
                state = "failed"
            elif self._closed:
                state = "ended"
            else:
                state = "starting"
            outcome = self._outcome
            if outcome is None and state == "ended":
                outcome = end_outcome(self._stop_reason)
            return ActorStatus(
                state=state,
                teacher_code=self.spec.teacher_code,
                error=self._error,
                stop_reason=self._stop_reason or self._error,
                code=None if outcome is None else outcome.code.value,
                message=None if outcome is None else outcome.message,
                **base,
            )
        session = handle.session
        error = handle.error or self._error
        # The bot's own outcome, unless the actor failed around it (its outcome then).
        code = bot_outcome(handle)
        if self._outcome is not None:
            code = (self._outcome.code.value, self._outcome.message)
        return ActorStatus(
            state="failed" if error else session.state,
            teacher_code=session.teacher_code,
            error=error,
            stop_reason=session.stop_reason,
            num_alerts=session.num_alerts,
            paused=session.paused,
            num_followed=session.num_followed,
            num_frames_analysed=session.num_frames_analysed,
            code=None if code is None else code[0],
            message=None if code is None else code[1],
            **base,
        )

    # -- the class ------------------------------------------------------------------------

    async def _run(self) -> None:
        from bot.runtime import BotRuntime, janus_connector  # aiortc: only in the actor

        spec = self.spec
        storage: Storage | None = None
        try:
            storage = await asyncio.to_thread(Storage.open, spec.database_url)
            gap_from = None
            if self.restarted:
                gap_from = await asyncio.to_thread(last_stored_t, storage, spec.meeting_id)
            runtime = BotRuntime(
                storage,
                live=self.live,
                connector_factories=[janus_connector],
                max_bots=1,
                num_media_workers=spec.num_media_workers,
                mode=spec.options["mode"],
            )
            self._runtime = runtime
            async with runtime:
                if self._stop_reason is not None:
                    return
                relay = asyncio.create_task(self._relay(), name="live relay")
                try:
                    self._handle = await runtime.start_bot(
                        spec.meeting_url,
                        spec.teacher,
                        spec.options,
                        spec.teacher_code,
                        meeting_id=spec.meeting_id,
                    )
                    if gap_from is not None:
                        await self._record_gap(gap_from)
                    await asyncio.shield(self._handle.task)
                finally:
                    relay.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await relay
        except asyncio.CancelledError:
            self._stop_reason = self._stop_reason or "asked to leave"
        except Exception as error:  # the server shows it; Ray need not restart a bad start
            logger.exception("bot %s failed", spec.bot_id)
            self._error = f"{type(error).__name__}: {error}"
            self._outcome = failure_outcome(error)
        finally:
            if storage is not None:
                await asyncio.to_thread(storage.close)
            self._closed = True
            self._changed.set()

    async def _relay(self) -> None:
        """Copies the meeting's live events into the buffer the server polls."""
        async for event in self.live.subscribe(self.spec.meeting_id):
            self._events.append((self._next_seq, event))
            self._next_seq += 1
            self._changed.set()

    async def _record_gap(self, gap_from: float) -> None:
        """Once the restarted bot is back in the class: the gap on the record, the teacher told."""
        from bot.session import RECLAIM

        handle = self._handle
        while handle.session.state == "starting" and not handle.task.done():
            await asyncio.sleep(0.1)
        if handle.session.state != "running":
            return
        now = time.time()
        gap_s = max(0.0, now - gap_from)
        text = (
            f"classpulse's worker for this class died and was restarted; nothing was analysed "
            f"for {gap_s:.0f} s"
        )
        session = handle.session
        session.writer.submit(
            AlertRaised(session.meeting_id, gap_from, RESTART_GAP_KIND, text, False)
        )
        session.publish({"type": "gap", "gap_s": gap_s, "t": now, "reason": "restart"})
        logger.warning("bot %s restarted by Ray: %.1f s gap recorded", self.spec.bot_id, gap_s)
        await session.say(RECLAIM)
