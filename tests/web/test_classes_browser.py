"""The dashboard's Classes page in headless Chromium: "New class" with a title shows the teacher
and student links with copy buttons and "Invite the bot"; a bad title is refused with the reason;
the student link opens the room."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer

from bot.room import ROOM_REGISTRY
from tests.room.browser import Browser
from tests.web.test_dashboard_browser import browser, open_page, server  # noqa: F401

pytestmark = pytest.mark.timeout(180)


async def test_new_class_shows_both_links_with_copy_buttons(
    browser: Browser,  # noqa: F811
    server: TestServer,  # noqa: F811
) -> None:
    page = await open_page(browser, server, "/classes")
    await page.wait_for(
        "!!document.querySelector('form.new-class') && !!document.getElementById('rooms')"
    )

    async def submit(title: str) -> None:
        await page.evaluate(
            f"""(() => {{
                const form = document.querySelector('form.new-class');
                form.title.value = {title!r};
                form.requestSubmit();
            }})()"""
        )

    await submit("   ")
    await page.wait_for("document.querySelector('p.error').textContent.includes('Expected title')")
    await submit("Math 7b")
    await page.wait_for("document.querySelectorAll('#rooms section.room').length === 1")
    name = await page.evaluate("document.querySelector('#rooms section.room').dataset.room")
    links = await page.evaluate(
        "[...document.querySelectorAll('#rooms section.room input')].map((i) => i.value)"
    )
    room = server.app[ROOM_REGISTRY].get(name)
    assert room is not None and name.startswith("math-7b-")
    assert links == [
        str(server.make_url(room.teacher_path)),
        str(server.make_url(room.student_path)),
    ]
    assert await page.evaluate("document.querySelectorAll('#rooms button.copy').length") == 2
    assert await page.evaluate("!!document.querySelector('#rooms button.invite-bot')")
    student = await browser.open(links[1])
    await student.wait_for("document.title.length > 0 && !!document.body")
