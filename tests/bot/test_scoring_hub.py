"""The scoring hub routes scores back by person, whatever a student puts in their name.

The inference process is replaced by a recording fake here (a real one takes seconds to load
TensorFlow); the bot end-to-end tests run the hub with the real process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from bot.scoring import ScoringHub
from engine.types import Scores

CROP = np.zeros((48, 48), np.uint8)


class _RecordingClient:
    """Keeps what was submitted and forgotten; ``answer()`` sends scores for every submission."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, float]] = []
        self.forgotten: list[str] = []
        self._batches: asyncio.Queue[list[Scores]] = asyncio.Queue()

    def submit(self, person_id: str, t: float, crop: np.ndarray) -> None:
        self.submitted.append((person_id, t))

    def forget(self, person_id: str) -> None:
        self.forgotten.append(person_id)

    def answer(self) -> None:
        self._batches.put_nowait(
            [Scores(person_id, t, 0.2, 0.3, 0.5) for person_id, t in self.submitted]
        )
        self.submitted = []

    async def results(self) -> AsyncIterator[list[Scores]]:
        while True:
            yield await self._batches.get()


async def _hub() -> tuple[ScoringHub, _RecordingClient, asyncio.Task[None]]:
    hub = ScoringHub()
    client = _RecordingClient()
    hub.client = client  # type: ignore[assignment]
    task = asyncio.create_task(hub._dispatch())
    return hub, client, task


async def test_forged_names_cannot_reach_another_meeting_or_student() -> None:
    hub, client, task = await _hub()
    got: dict[str, list[tuple[str, float]]] = {"m1": [], "m2": []}
    hub.register("m1", lambda label, s: got["m1"].append((label, s.t)))
    hub.register("m2", lambda label, s: got["m2"].append((label, s.t)))
    # A student in m2 named to look like m1's Ana under the old "meeting|label" scheme.
    hub.submit("m1", "Ana", 1.0, CROP)
    hub.submit("m2", "m1|Ana", 2.0, CROP)
    hub.submit("m2", "Ana", 3.0, CROP)
    assert len({person_id for person_id, _ in client.submitted}) == 3
    assert all("Ana" not in person_id for person_id, _ in client.submitted)  # opaque ids
    client.answer()
    await asyncio.sleep(0.01)
    assert got == {"m1": [("Ana", 1.0)], "m2": [("m1|Ana", 2.0), ("Ana", 3.0)]}
    task.cancel()


async def test_forgotten_people_and_ended_sessions_get_no_late_scores() -> None:
    hub, client, task = await _hub()
    got: list[tuple[str, str]] = []
    hub.register("m1", lambda label, s: got.append(("m1", label)))
    hub.register("m2", lambda label, s: got.append(("m2", label)))
    hub.submit("m1", "Ana", 1.0, CROP)
    hub.submit("m1", "Ben", 1.0, CROP)
    hub.submit("m2", "Cy", 1.0, CROP)
    ana, ben, cy = (person_id for person_id, _ in client.submitted)
    hub.forget("m1", "Ana")  # opted out while her frame was in flight
    hub.unregister("m2")  # the meeting ended
    assert client.forgotten == [ana, cy]  # their windows go at once, Ben's stays
    client.answer()
    await asyncio.sleep(0.01)
    assert got == [("m1", "Ben")]
    hub.submit("m1", "Ana", 5.0, CROP)  # back in: a fresh id, a fresh window
    assert client.submitted[0][0] not in (ana, ben, cy)
    task.cancel()
