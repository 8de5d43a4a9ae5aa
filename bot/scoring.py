"""One inference client shared by every meeting in the process, with scores routed back.

A person is ``(key, label)``: ``key`` names the meeting session, ``label`` the student. The
inference process sees only an opaque id the hub hands out per person (``"p17"``), so nothing a
student can type into their display name (a label is derived from it) is ever parsed back. One
client means one batched model call per tick for every person in every meeting the process serves.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
import math
import time
from collections.abc import Callable

import numpy as np

from engine.inference import InferenceSettings
from engine.inference_client import InferenceClient
from engine.types import InferenceStats, Scores

logger = logging.getLogger(__name__)

ScoresHandler = Callable[[str, Scores], None]
#: ``(session key, student label)``.
PersonKey = tuple[str, str]


class LagHistogram:
    """Counts of lags (seconds) by upper bound; cumulative like a Prometheus histogram."""

    BOUNDS_S = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, math.inf)

    def __init__(self) -> None:
        self._counts = [0] * len(self.BOUNDS_S)
        self.total_s = 0.0
        self.count = 0

    def observe(self, lag_s: float) -> None:
        self._counts[bisect.bisect_left(self.BOUNDS_S, lag_s)] += 1
        self.total_s += lag_s
        self.count += 1

    def buckets(self) -> tuple[tuple[float, int], ...]:
        cumulative, out = 0, []
        for bound, count in zip(self.BOUNDS_S, self._counts, strict=True):
            cumulative += count
            out.append((bound, cumulative))
        return tuple(out)


class ScoringHub:
    """Owns the inference client and the one task that reads its results."""

    def __init__(self, settings: InferenceSettings | None = None) -> None:
        self.client = InferenceClient(settings)
        self._handlers: dict[str, ScoresHandler] = {}
        self._ids: dict[PersonKey, str] = {}  # person → the id the inference process sees
        self._persons: dict[str, PersonKey] = {}  # and back
        self._numbers = itertools.count(1)
        #: Frame decoded → scores handed to the session's state tracker (``Scores.t`` is the
        #: frame's wall-clock time).
        self.lag = LagHistogram()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> ScoringHub:
        await self.client.astart()
        self._task = asyncio.create_task(self._dispatch(), name="scoring-hub")
        return self

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.aclose()

    def register(self, key: str, handler: ScoresHandler) -> None:
        """``handler(label, scores)`` is called on the event loop for each of ``key``'s scores."""
        self._handlers[key] = handler

    def unregister(self, key: str) -> None:
        """The session ended: no more of its scores, and its people's windows dropped at once."""
        self._handlers.pop(key, None)
        for person in [person for person in self._ids if person[0] == key]:
            self.forget(*person)

    def submit(self, key: str, label: str, t: float, crop: np.ndarray) -> None:
        person = (key, label)
        person_id = self._ids.get(person)
        if person_id is None:
            person_id = self._ids[person] = f"p{next(self._numbers)}"
            self._persons[person_id] = person
        self.client.submit(person_id, t, crop)

    def forget(self, key: str, label: str) -> None:
        """Drop a person's window at once (opt-out, left the meeting); scores of theirs still in
        flight are discarded."""
        person_id = self._ids.pop((key, label), None)
        if person_id is not None:
            del self._persons[person_id]
            self.client.forget(person_id)

    def stats(self) -> InferenceStats:
        return self.client.stats()

    async def _dispatch(self) -> None:
        async for batch in self.client.results():
            now = time.time()
            for scores in batch:
                self.lag.observe(max(0.0, now - scores.t))
                person = self._persons.get(scores.person_id)
                handler = self._handlers.get(person[0]) if person is not None else None
                if person is None or handler is None:
                    continue  # the session ended (or the person opted out) while in flight
                key, label = person
                try:
                    handler(label, scores)
                except Exception:  # one session's bug must not stop the others' scores
                    logger.exception("scores handler for %s failed", key)


class NoScoring:
    """What an ``attention``-mode session scores with: nothing (no emotion model, no inference
    process). The session does not submit crops in that mode; this only answers its calls."""

    def register(self, key: str, handler: ScoresHandler) -> None:
        pass

    def unregister(self, key: str) -> None:
        pass

    def submit(self, key: str, label: str, t: float, crop: np.ndarray) -> None:
        raise RuntimeError(
            "Expected no crops to score in the attention mode. Received: a crop for scoring"
        )

    def forget(self, key: str, label: str) -> None:
        pass
