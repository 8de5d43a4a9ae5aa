"""One retry schedule for everything that retries: re-joining a meeting, restarting the inference
process, delivering a webhook. Delays double from ``initial_s`` up to ``max_s``, with jitter so
that many bots that lost the same server do not come back in lock-step."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays (seconds) between attempts: ``initial_s`` doubling up to ``max_s``, ±``jitter``."""

    initial_s: float = 0.25
    max_s: float = 4.0
    #: Relative spread of each delay: 0.2 draws it from [0.8, 1.2] × the nominal delay.
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s or not 0 <= self.jitter < 1:
            raise ValueError(
                "Expected 0 < initial_s <= max_s and 0 <= jitter < 1. Received: "
                f"initial_s={self.initial_s}, max_s={self.max_s}, jitter={self.jitter}"
            )

    def delays(self) -> Iterator[float]:
        """An endless schedule; start a new one after a success."""
        delay = self.initial_s
        while True:
            yield delay * random.uniform(1 - self.jitter, 1 + self.jitter)
            delay = min(delay * 2, self.max_s)
