"""The dashboard's explanations in headless Chromium: the model report rendered from Markdown
(and nothing in it runs), the token prompt's commands, the charts' legends and one time scale."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from aiohttp.test_utils import TestServer

from bot.settings import Settings
from tests.room.browser import Browser
from tests.web.conftest import TOKEN, Seeded
from tests.web.test_dashboard_browser import browser, count, open_page, save, server

__all__ = ["browser", "server"]  # fixtures, shared with the dashboard's other browser tests

REPORT = """# classpulse model evaluation

Model: `emotion_cnn_lstm.keras`

## fer2013 test split

**fer2013 test split** — 3574 faces

| class | precision | recall |
|---|---|---|
| interested | 0.908 | 0.868 |
| bored | 0.519 | 0.633 |

accuracy **0.819**; see *the model card* and [the paper](https://example.org/paper).

- FER2013 PublicTest
- JAFFE test subjects

![confusion](confusion_fer.png)

<img src=x onerror="window.pwned = 1"><script>window.pwned = 2</script>
[click me](javascript:window.pwned=3) ![x](javascript:window.pwned=4)
"""


async def test_about_page_renders_the_report_and_runs_nothing_from_it(
    browser: Browser, server: TestServer, settings: Settings, tmp_path: Path
) -> None:
    assert settings.model_report_dir is not None
    settings.model_report_dir.mkdir(parents=True)
    plot = np.full((120, 200, 3), 255, np.uint8)
    cv2.rectangle(plot, (20, 20), (180, 100), (200, 80, 30), -1)
    cv2.imwrite(str(settings.model_report_dir / "confusion_fer.png"), plot)
    cv2.imwrite(str(settings.model_report_dir / "training_curves.png"), plot)
    (settings.model_report_dir / "report.md").write_text(REPORT)
    page = await open_page(browser, server, "/about")
    await page.wait_for("(document.querySelector('.report img') || {}).naturalWidth === 200")
    report = "document.querySelector('.report')"
    assert await page.evaluate(f"{report}.querySelector('h2').textContent") == (
        "classpulse model evaluation"
    )
    assert await count(page, ".report h3") == 1
    assert await count(page, ".report table tbody tr") == 2
    assert await page.evaluate(f"{report}.querySelector('td').textContent") == "interested"
    assert await page.evaluate(f"{report}.querySelector('code').textContent") == (
        "emotion_cnn_lstm.keras"
    )
    assert await count(page, ".report strong") == 2
    assert await count(page, ".report em") == 1
    assert await count(page, ".report ul li") == 2
    assert await page.evaluate(f"{report}.querySelector('a').href") == "https://example.org/paper"
    text = await page.evaluate(f"{report}.textContent")
    for raw in ("**", "|---", "](", "# "):
        assert raw not in text, f"raw Markdown {raw!r} on the page"
    # The HTML in the Markdown is text; no javascript: link or image, nothing ran.
    assert '<img src=x onerror="window.pwned = 1">' in text and "<script>" in text
    assert await count(page, ".report script") == 0
    assert await count(page, ".report img") == 1  # the plot it names, not the injected ones
    assert await count(page, "a[href^='javascript']") == 0
    assert await page.evaluate("window.pwned === undefined")
    # The plot shown in the report is not shown twice; the other one is in the gallery.
    await page.wait_for("(document.querySelector('.plots img') || {}).naturalWidth === 200")
    assert await page.evaluate(
        "[...document.querySelectorAll('.plots figcaption')].map((f) => f.textContent)"
    ) == ["training_curves.png"]
    save(await page.screenshot(), tmp_path, "about.png")


async def test_the_token_prompt_shows_commands_not_backticks(
    browser: Browser, server: TestServer
) -> None:
    page = await browser.open(str(server.make_url("/")))  # no token yet
    await page.wait_for("!!document.querySelector('.token-form')")
    prompt = await page.evaluate("document.querySelector('.token-form').textContent")
    assert "`" not in prompt
    assert await page.evaluate(
        "[...document.querySelectorAll('.token-form code')].map((c) => c.textContent)"
    ) == ["classpulse serve", "classpulse serve --new-token"]
    assert TOKEN not in prompt


async def test_the_meeting_charts_explain_their_marks_on_one_time_scale(
    browser: Browser, server: TestServer, seeded: Seeded, tmp_path: Path
) -> None:
    meeting = seeded.algebra
    page = await open_page(browser, server, f"/meetings/{meeting.meeting_id}")
    await page.wait_for("document.querySelectorAll('#timeline .alert-mark').length === 2")
    legends = await page.evaluate(
        "[...document.querySelectorAll('.legend')].map((l) => l.textContent)"
    )
    assert any("alert to the teacher" in text for text in legends), legends
    assert any("lighter" in text for text in legends), legends
    assert await count(page, ".legend .key-mark .alert-mark") == 2
    assert await count(page, ".legend .swatch.light") >= 1
    titles = await page.evaluate(
        "[...document.querySelectorAll('.chart .axis-title')].map((t) => t.textContent)"
    )
    assert titles.count("time since the class started") == 2 and "share of the class" in titles
    # The alerts are listed on the charts' time scale (90 s and 100 s after the start).
    marks = await page.evaluate(
        "[...document.querySelectorAll('#timeline .alert-mark title')]"
        ".map((t) => t.textContent.split(':').slice(0, 2).join(':'))"
    )
    listed = await page.evaluate(
        "[...document.querySelectorAll('#alerts li time')].map((t) => t.textContent)"
    )
    assert listed == ["1:30", "1:40"]
    assert marks == listed
    ticks = await page.evaluate(
        "[...document.querySelectorAll('#timeline .axis text')].map((t) => t.textContent)"
    )
    assert "1:30" in ticks or "2 min" in ticks, ticks
    save(await page.screenshot(), tmp_path, "meeting-legend.png")
