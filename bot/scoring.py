"""One inference client shared by every meeting in the process, with scores routed back by prefix.

Person ids sent to the inference process are ``"{key}|{label}"``: ``key`` names the meeting
session, ``label`` the student. One client means one batched model call per tick for every
person in every meeting the process serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import numpy as np

from engine.inference import InferenceSettings
from engine.inference_client import InferenceClient
from engine.types import InferenceStats, Scores

logger = logging.getLogger(__name__)

SEPARATOR = "|"
ScoresHandler = Callable[[str, Scores], None]


class ScoringHub:
    """Owns the inference client and the one task that reads its results."""

    def __init__(self, settings: InferenceSettings | None = None) -> None:
        self.client = InferenceClient(settings)
        self._handlers: dict[str, ScoresHandler] = {}
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
            for scores in batch:
                key, _, label = scores.person_id.partition(SEPARATOR)
                handler = self._handlers.get(key)
                if handler is None:
                    continue  # the session ended (or the person opted out) while in flight
                try:
                    handler(label, scores)
                except Exception:  # one session's bug must not stop the others' scores
                    logger.exception("scores handler for %s failed", key)
