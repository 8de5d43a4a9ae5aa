"""The dashboard in Debian's headless Chromium over the DevTools protocol: a seeded meeting's
timeline and lanes are drawn, hostile display names stay text, and a live update arrives while
the test pushes samples through the real writer and live feed."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from bot.live import LiveFeed
from bot.settings import Settings
from bot.web.app import create_app
from engine.types import EngagementState
from storage import Storage
from tests.conftest import require
from tests.room.browser import Browser, Page, find_chromium, is_blank, write_y4m
from tests.web.conftest import HOSTILE_NAME, TOKEN, Seeded
from tests.web.fakes import FakeBotManager
from tests.web.test_api import JANUS_URL

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    executable = find_chromium()
    require(executable is not None, "Debian's chromium is missing (./dev.sh test installs it)")
    assert executable is not None
    # The launcher always sets up a fake camera; the dashboard never asks for it.
    camera = write_y4m([np.zeros((48, 64, 3), np.uint8)], tmp_path / "camera.y4m", fps=1)
    opened = await Browser.launch(executable, tmp_path / "profile", camera)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def server(
    settings: Settings, storage: Storage, bots: FakeBotManager, feed: LiveFeed
) -> AsyncIterator[TestServer]:
    app = create_app(settings, storage=storage, bots=bots, feed=feed)
    test_server = TestServer(app, host="127.0.0.1")
    async with test_server:  # aiohttp types __aenter__ as returning BaseTestServer
        yield test_server


async def open_page(browser: Browser, server: TestServer, path: str) -> Page:
    return await browser.open(f"{server.make_url(path)}#token={TOKEN}")


async def count(page: Page, selector: str) -> int:
    return int(await page.evaluate(f"document.querySelectorAll({selector!r}).length"))


def save(png: bytes, tmp_path: Path, name: str) -> None:
    """Kept in the test's folder; ``CLASSPULSE_SCREENSHOTS=DIR`` keeps a copy to look at."""
    (tmp_path / name).write_bytes(png)
    folder = os.environ.get("CLASSPULSE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_bytes(png)


async def test_history_pages_draw_the_seeded_meeting(
    browser: Browser, server: TestServer, seeded: Seeded, settings: Settings, tmp_path: Path
) -> None:
    meeting = seeded.algebra
    page = await open_page(browser, server, f"/meetings/{meeting.meeting_id}")
    # 120 s in 10 s buckets; one lane per student; the two alerts as markers and list items.
    await page.wait_for("document.querySelectorAll('#timeline [data-bucket]').length === 12")
    assert await count(page, "#lanes .lane") == len(meeting.students)
    assert await count(page, "#timeline .alert-mark") == len(meeting.alerts)
    assert await count(page, "#alerts li") == len(meeting.alerts)
    assert await page.evaluate("document.getElementById('live-status').textContent") == "ended"
    # Ana: interested for a minute, then confused: her lane shows both states.
    ana = await page.evaluate(
        "[...document.querySelectorAll('#lanes .lane[data-student=\"Ana\"] rect.fill')]"
        ".map(r => r.classList[1]).join(',')"
    )
    assert ana.split(",") == ["interested"] * 6 + ["confused"] * 6
    # The hostile display name is shown as text and never becomes markup.
    assert await page.evaluate(f"document.body.textContent.includes({HOSTILE_NAME!r})")
    assert await count(page, "main img") == 0
    assert await page.evaluate("document.title") == "classpulse"
    assert await page.evaluate(
        "[...document.getElementById('view').childNodes].every(n => n.nodeType === 1)"
    ), "stray text (e.g. 'null') between the page's sections"
    height = await page.evaluate("document.documentElement.scrollHeight")
    await page.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1280, "height": min(height, 2400), "deviceScaleFactor": 1, "mobile": False},
    )
    png = await page.screenshot()
    save(png, tmp_path, "meeting.png")
    assert not is_blank(png)

    listing = await open_page(browser, server, "/")
    await listing.wait_for("document.querySelectorAll('#meetings tbody tr').length === 2")
    student = await open_page(browser, server, "/students/Ana")
    await student.wait_for("document.querySelectorAll('.student-bars .meeting-bar').length === 2")
    save(await student.screenshot(), tmp_path, "student.png")

    assert settings.model_report_dir is not None
    settings.model_report_dir.mkdir(parents=True)
    plot = np.full((120, 200, 3), 255, np.uint8)
    cv2.rectangle(plot, (20, 20), (180, 100), (200, 80, 30), -1)
    cv2.imwrite(str(settings.model_report_dir / "confusion_fer.png"), plot)
    (settings.model_report_dir / "report.md").write_text("# classpulse model evaluation\n")
    about = await open_page(browser, server, "/about")
    await about.wait_for("(document.querySelector('.plots img') || {}).naturalWidth === 200")
    assert "model evaluation" in await about.evaluate(
        "document.querySelector('.report').textContent"
    )


async def test_meeting_page_updates_live_while_samples_arrive(
    browser: Browser, server: TestServer, bots: FakeBotManager, tmp_path: Path
) -> None:
    # The teacher invites the bot from the Bots page; a wrong URL is refused with the reason.
    invite = await open_page(browser, server, "/bots")
    await invite.wait_for(
        "!!document.querySelector('form.invite') && !!document.getElementById('bots')"
    )

    async def submit(url: str) -> None:
        await invite.evaluate(
            f"""(() => {{
                const form = document.querySelector('form.invite');
                form.meeting_url.value = {url!r};
                form.teacher.value = 'Ms Rivera';
                form.options.value = '{{"title": "Live class"}}';
                form.requestSubmit();
            }})()"""
        )

    await submit("https://example.org/j/1")
    await invite.wait_for("document.querySelector('p.error').textContent.includes('janus+ws://')")
    await submit(JANUS_URL)
    await invite.wait_for("document.querySelectorAll('#bots tbody tr').length === 1")
    [info] = bots.list()
    meeting_id = info.meeting_id
    assert meeting_id is not None
    t0 = bots.get(info.bot_id).started_at  # type: ignore[union-attr]
    for second in range(5):
        bots.push_sample(meeting_id, "Ana", EngagementState.INTERESTED, t0 + second)
    assert bots.writer.flush(timeout_s=10)

    page = await open_page(browser, server, f"/meetings/{meeting_id}")
    await page.wait_for("document.getElementById('live-status')?.textContent === 'live'")
    assert await count(page, "#timeline [data-bucket]") == 1
    # Wait until the page's event stream is subscribed before pushing.
    for _ in range(100):
        if bots.feed.num_subscribers(meeting_id):
            break
        await asyncio.sleep(0.1)
    assert bots.feed.num_subscribers(meeting_id) == 1

    started = time.monotonic()
    for second in range(12, 15):  # the second 10-s bucket of the meeting
        bots.push_sample(meeting_id, "Zoe", EngagementState.CONFUSED, t0 + second)
        bots.push_sample(meeting_id, "Ana", EngagementState.BORED, t0 + second)
    bots.push_alert(meeting_id, t0 + 14, "confused", "Zoe looks confused", "Zoe")
    await page.wait_for(
        "document.querySelector('#live-now [data-student=\"Zoe\"]')?.dataset.state === 'confused'",
        timeout=10,
    )
    live_s = time.monotonic() - started
    coverage = {"meeting_id": meeting_id, "type": "coverage", "visible": 1, "total": 2}
    bots.feed.publish(meeting_id, {**coverage, "t": t0 + 14})
    await page.wait_for(
        "document.getElementById('coverage').textContent === '1 of 2 students visible'", timeout=10
    )
    # The stored timeline is reloaded after the writer committed: a second bucket appears.
    await page.wait_for(
        "document.querySelectorAll('#timeline [data-bucket]').length === 2", timeout=15
    )
    await page.wait_for("document.querySelectorAll('#lanes .lane').length === 2", timeout=15)
    assert await page.evaluate(
        "document.getElementById('alerts').textContent.includes('Zoe looks confused')"
    )
    png = await page.screenshot()
    save(png, tmp_path, "live.png")
    assert not is_blank(png)

    await bots.stop(info.bot_id)
    await page.wait_for(
        "document.getElementById('live-status').textContent === 'ended'", timeout=10
    )
    print(f"live update shown {live_s:.2f} s after the samples were pushed")
