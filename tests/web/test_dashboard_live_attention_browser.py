"""The live meeting page shows attention in headless Chromium: per student, from the live feed's
``attention`` object, how long the head has been turned away or the eyes closed (gone when the
reading says otherwise or the face goes); attention alerts with their own colour, tag and
legend; an attention-only class shows no emotion columns or keys, an engagement class without
readings no attention ones. Samples go through the real writer and live feed (the bot is the
test's fake, which plays the session's events)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from engine.types import EngagementState as S
from storage import ParticipantJoined, Sample
from tests.room.browser import Browser, Page, is_blank
from tests.web.conftest import Seeded
from tests.web.fakes import FakeBotManager
from tests.web.test_api import JANUS_URL
from tests.web.test_dashboard_browser import browser, count, open_page, save, server

__all__ = ["browser", "server"]  # fixtures used below

pytestmark = pytest.mark.timeout(180)


def _reading(
    yaw: float, *, closed: bool = False, away_s: float = 0.0, closed_s: float = 0.0
) -> dict[str, Any]:
    """The live feed's attention object, as ``bot.session.analysis._attention_event`` makes it."""
    return {
        "yaw": yaw,
        "pitch": 2.0,
        "eyes_open": not closed,
        "looking_away": abs(yaw) > 35,
        "looking_away_s": away_s,
        "eyes_closed_s": closed_s,
        "perclos": 0.25 if closed else 0.0,
    }


class AttentionClass:
    """An attention-mode class played as the session does: a stored sample (state ``present``,
    NULL scores, the reading) and the same sample on the live feed."""

    def __init__(self, bots: FakeBotManager, meeting_id: str, t0: float) -> None:
        self.bots, self.meeting_id, self.t0 = bots, meeting_id, t0
        self.joined: set[str] = set()

    def sample(self, name: str, second: float, reading: dict[str, Any] | None) -> None:
        t = self.t0 + second
        if name not in self.joined:
            self.joined.add(name)
            self.bots.writer.submit(ParticipantJoined(self.meeting_id, name, t))
        face = reading is not None
        state = S.PRESENT if face else S.NO_FACE
        self.bots.writer.submit(
            Sample(
                self.meeting_id, name, t, state, face,
                yaw=reading["yaw"] if reading else None, pitch=2.0 if reading else None,
                eyes_open=reading["eyes_open"] if reading else None,
                looking_away=reading["looking_away"] if reading else None,
            )
        )  # fmt: skip
        self.publish(
            {"type": "sample", "student": name, "state": state.value, "t": t, "p": None,
             "attention": reading}
        )  # fmt: skip

    def publish(self, event: dict[str, Any]) -> None:
        self.bots.feed.publish(self.meeting_id, {"meeting_id": self.meeting_id, **event})


async def _student(page: Page, name: str, what: str) -> Any:
    return await page.evaluate(
        f"document.querySelector('#live-now [data-student=\"{name}\"]')?.{what}"
    )


async def test_live_page_shows_attention_per_student_and_attention_alerts(
    browser: Browser, server: TestServer, bots: FakeBotManager, tmp_path: Path
) -> None:
    info = await bots.start(JANUS_URL, "Ms Rivera", {"title": "Attention live"})
    assert info.meeting_id is not None
    play = AttentionClass(bots, info.meeting_id, info.started_at)
    for second in range(3):
        play.sample("Tom", second, _reading(2.0))
        play.sample("Uma", second, _reading(1.0))
    assert bots.writer.flush(timeout_s=10)

    page = await open_page(browser, server, f"/meetings/{info.meeting_id}")
    await page.wait_for("document.getElementById('live-status')?.textContent === 'live'")
    for _ in range(100):
        if bots.feed.num_subscribers(info.meeting_id):
            break
        await asyncio.sleep(0.1)
    # Attention-only: no emotion column or key; the readings' columns and keys instead.
    head = await page.evaluate("document.querySelector('#time-per-state thead').textContent")
    assert "interested" not in head and "confused" not in head
    assert "Looking away" in head and "Eyes closed" in head and "in view" in head
    assert await count(page, ".legend [data-state=interested]") == 0
    assert await count(page, "#class-key .legend [data-state=present]") == 1
    assert "looking away (top stripe)" in await page.evaluate("document.body.innerText")

    play.sample("Tom", 12, _reading(48.0, away_s=12.0))
    play.sample("Uma", 12, _reading(1.0, closed=True, closed_s=7.5))
    play.sample("Vic", 12, None)  # camera on, no face: no reading
    await page.wait_for(
        "document.querySelector('#live-now [data-student=\"Vic\"]')?.dataset.state === 'no_face'",
        timeout=10,
    )
    assert await _student(page, "Tom", "dataset.attention") == "looking_away"
    assert await _student(page, "Tom", "querySelector('.attn').textContent") == (
        "looking away 12 s"
    )
    assert await _student(page, "Tom", "querySelector('.badge.present').textContent") == (
        "in view (attention mode)"
    )
    assert await _student(page, "Uma", "dataset.attention") == "eyes_closed"
    assert await _student(page, "Uma", "querySelector('.attn').textContent") == "eyes closed 8 s"
    assert "25 %" in await _student(page, "Uma", "querySelector('.attn').title")
    assert await _student(page, "Vic", "dataset.attention") == ""
    png = await page.screenshot()
    save(png, tmp_path, "live-attention.png")
    assert not is_blank(png)

    # A state change carries no reading: Tom's stays; the next sample says he looks back.
    play.publish({"type": "state", "student": "Tom", "state": "present", "t": play.t0 + 13})
    play.sample("Uma", 13, _reading(1.0, closed=True, closed_s=8.5))
    await page.wait_for(
        "document.querySelector('#live-now [data-student=\"Uma\"] .attn')?.textContent"
        " === 'eyes closed 9 s'",
        timeout=10,
    )
    assert await _student(page, "Tom", "dataset.attention") == "looking_away"
    play.sample("Tom", 14, _reading(3.0))
    await page.wait_for(
        "document.querySelector('#live-now [data-student=\"Tom\"]').dataset.attention === ''",
        timeout=10,
    )
    # Uma's face goes: no face, no attention chip.
    play.publish({"type": "state", "student": "Uma", "state": "no_face", "t": play.t0 + 15})
    await page.wait_for(
        "document.querySelector('#live-now [data-student=\"Uma\"]').dataset.attention === ''",
        timeout=10,
    )

    bots.push_alert(
        info.meeting_id, play.t0 + 14, "looked_away", "Tom has looked away for 60 s", "Tom"
    )
    await page.wait_for("document.querySelectorAll('#alerts li.looked_away').length === 1")
    assert (
        await page.evaluate(
            "document.querySelector('#alerts li.looked_away .alert-kind').textContent"
        )
        == "looked away"
    )
    assert await count(page, "#timeline .alert-mark.looked_away") == 1
    legends = await page.evaluate("document.getElementById('class-key').textContent")
    assert "attention alert to the teacher" in legends and "confusion" not in legends
    colours = await page.evaluate(
        "[...document.querySelectorAll('#class-key .alert-mark')]"
        ".map((m) => getComputedStyle(m).fill)"
    )
    assert len(colours) == 2 and len(set(colours)) == 2  # looked away, eyes closed: apart


async def test_an_engagement_class_without_readings_shows_no_attention_keys(
    browser: Browser, server: TestServer, seeded: Seeded
) -> None:
    page = await open_page(browser, server, f"/meetings/{seeded.algebra.meeting_id}")
    await page.wait_for("!!document.querySelector('#time-per-state tbody tr')")
    head = await page.evaluate("document.querySelector('#time-per-state thead').textContent")
    assert "interested" in head and "Looking away" not in head and "in view" not in head
    text = await page.evaluate("document.body.innerText")
    assert "alert to the teacher (confusion" in text
    assert "attention alert" not in text and "top stripe" not in text
