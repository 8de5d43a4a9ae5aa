"""One inference client shared by every meeting in the process, with scores routed back by prefix.

Person ids sent to the inference process are ``"{key}|{label}"``: ``key`` names the meeting
session, ``label`` the student. One client means one batched model call per tick for every
person in every meeting the process serves.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
import time
from collections.abc import Callable

import numpy as np

from engine.inference import InferenceSettings
from engine.inference_client import InferenceClient
from engine.types import InferenceStats, Scores

logger = logging.getLogger(__name__)

SEPARATOR = "|"
ScoresHandler = Callable[[str, Scores], None]


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
        if SEPARATOR in key:
            raise ValueError(f"Expected a session key without {SEPARATOR!r}. Received: {key!r}")
        self._handlers[key] = handler

    def unregister(self, key: str) -> None:
        self._handlers.pop(key, None)

    def submit(self, key: str, label: str, t: float, crop: np.ndarray) -> None:
        self.client.submit(f"{key}{SEPARATOR}{label}", t, crop)

    def forget(self, key: str, label: str) -> None:
        """Drop a person's window at once (opt-out, left the meeting)."""
        self.client.forget(f"{key}{SEPARATOR}{label}")

    def stats(self) -> InferenceStats:
        return self.client.stats()

    async def _dispatch(self) -> None:
        async for batch in self.client.results():
            now = time.time()
            for scores in batch:
                self.lag.observe(max(0.0, now - scores.t))
                key, _, label = scores.person_id.partition(SEPARATOR)
                handler = self._handlers.get(key)
                if handler is None:
                    continue  # the session ended (or the person opted out) while in flight
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
