"""``GET /api/meetings/{meeting_id}/report``: the post-class report page (``bot.report``), the
same HTML as ``classpulse report``, behind the API token like every other read."""

from __future__ import annotations

from aiohttp import web

from bot.report import REPORT_CSP, load_report, render_report
from bot.web.inputs import in_thread, only_params


async def get_report(request: web.Request) -> web.Response:
    only_params(request.query, set())
    meeting_id = request.match_info["meeting_id"]
    page = await in_thread(request, lambda storage: render_report(load_report(storage, meeting_id)))
    return web.Response(
        text=page,
        content_type="text/html",
        charset="utf-8",
        headers={
            # The page is a file to keep (names in it are escaped, it has no script): the
            # dashboard saves it; a browser opening the URL directly gets a strict policy too.
            "Content-Disposition": f'attachment; filename="report-{_safe(meeting_id)}.html"',
            "Content-Security-Policy": REPORT_CSP,
            "Cache-Control": "no-store",
        },
    )


def _safe(meeting_id: str) -> str:
    """The id's first 8 characters as a file name part (letters, digits, '-' and '_' only)."""
    return "".join(c for c in meeting_id[:8] if c.isascii() and (c.isalnum() or c in "-_"))
