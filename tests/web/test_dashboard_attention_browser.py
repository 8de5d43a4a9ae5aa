"""The dashboard's lanes show attention in headless Chromium: stripes where a student looked away
or had the eyes closed, with their legend, and the attention mode's ``present`` state."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestServer

from engine.types import EngagementState as S
from storage import MeetingOpened, ParticipantJoined, Sample, Storage
from tests.room.browser import Browser
from tests.web.test_dashboard_browser import browser, count, open_page, server

__all__ = ["browser", "server"]  # fixtures used below

pytestmark = pytest.mark.timeout(180)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()


def _seed(storage: Storage) -> str:
    """Tom (attention mode): present 60 s, head turned away 20–40 s, eyes closed 40–50 s."""
    meeting = "m-attention-lanes"
    with storage.writer() as writer:
        writer.submit(MeetingOpened(meeting, "builtin", "physics", T0, title="Physics"))
        writer.submit(ParticipantJoined(meeting, "Tom", T0))
        for i in range(60):
            away, closed = 20 <= i < 40, 40 <= i < 50
            writer.submit(
                Sample(
                    meeting, "Tom", T0 + i, S.PRESENT, True,
                    yaw=50.0 if away else 2.0, pitch=0.0,
                    eyes_open=not closed, looking_away=away,
                )
            )  # fmt: skip
    return meeting


async def test_lanes_draw_looking_away_and_eyes_closed_stripes(
    browser: Browser, server: TestServer, storage: Storage
) -> None:
    meeting = _seed(storage)
    page = await open_page(browser, server, f"/meetings/{meeting}")
    await page.wait_for("document.querySelectorAll('#lanes .lane').length === 1")
    # Whatever bucket the page chose: stripes exist, the turned head before the closed eyes.
    assert await count(page, "#lanes .attention.looking_away") >= 1
    assert await count(page, "#lanes .attention.eyes_closed") >= 1
    assert await count(page, "#lanes .fill.present") >= 1
    assert await page.evaluate(
        "Math.min(...[...document.querySelectorAll('#lanes .attention.looking_away')]"
        ".map((r) => +r.getAttribute('x'))) <= Math.max(...[...document.querySelectorAll("
        "'#lanes .attention.eyes_closed')].map((r) => +r.getAttribute('x')))"
    )
    legend = await page.evaluate("document.body.innerText")
    assert "looking away (top stripe)" in legend and "eyes closed (bottom stripe)" in legend
    assert "in view (attention mode)" in legend
