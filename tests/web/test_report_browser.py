"""The post-class report in headless Chromium: the dashboard's "Printable report" button saves the
page served by the API, and that file, opened on its own, draws the class curve, the coverage line
and the lanes (non-blank), and prints to PDF; so does a meeting whose scores are all NULL."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bot.report import load_report, render_report
from storage import Storage, Writer
from tests.room.browser import Browser, Page, is_blank
from tests.web.conftest import Seeded
from tests.web.test_dashboard_browser import browser, count, open_page, save, server
from tests.web.test_report import ATTENTION_ID, seed_attention_meeting

__all__ = ["browser", "server"]  # fixtures shared with the dashboard's browser tests

pytestmark = pytest.mark.timeout(180)


async def _check_report(page: Page, tmp_path: Path, name: str) -> None:
    await page.wait_for("document.readyState === 'complete' && !!document.querySelector('svg')")
    assert await count(page, "#class-curve rect.share") > 0
    assert await count(page, "#lanes rect.lane") > 0
    width = await page.evaluate(
        "document.querySelector('#class-curve').getBoundingClientRect().width"
    )
    assert width > 300
    png = await page.screenshot()
    save(png, tmp_path, f"{name}.png")
    assert not is_blank(png)
    pdf = base64.b64decode((await page.send("Page.printToPDF", {}))["data"])
    assert pdf.startswith(b"%PDF") and len(pdf) > 5000


async def test_dashboard_saves_the_report_and_it_renders(
    browser: Browser, server: TestServer, seeded: Seeded, tmp_path: Path
) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    await browser.send(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    meeting = seeded.algebra
    page = await open_page(browser, server, f"/meetings/{meeting.meeting_id}")
    await page.wait_for("!!document.querySelector('#report')")
    await page.evaluate("document.querySelector('#report').click()")
    saved = downloads / f"report-{meeting.meeting_id[:8]}.html"
    async with asyncio.timeout(20):
        while not saved.is_file() or saved.stat().st_size == 0:
            await asyncio.sleep(0.2)
    report = await browser.open(saved.as_uri())
    await _check_report(report, tmp_path, "report-seeded")
    assert await count(report, "#class-curve .alert") == len(meeting.alerts)
    assert await count(report, "#class-curve polyline.coverage") == 1
    assert "Algebra" in await report.evaluate("document.title")


async def test_report_with_null_scores_renders(
    browser: Browser, storage: Storage, writer: Writer, tmp_path: Path
) -> None:
    seed_attention_meeting(writer, 1_770_000_000.0)
    assert writer.flush(timeout_s=30)
    path = tmp_path / "attention.html"
    path.write_text(render_report(load_report(storage, ATTENTION_ID)), encoding="utf-8")
    page = await browser.open(path.as_uri())
    await _check_report(page, tmp_path, "report-null-scores")
    assert await count(page, "#lanes rect.lane.present") > 0
    assert await count(page, "#lanes rect.attention.looking_away") > 0
