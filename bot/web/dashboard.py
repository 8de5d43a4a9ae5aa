"""The dashboard: one static page (plain HTML, JS and SVG; no build step) that reads the REST API.

Every dashboard path answers the same ``index.html``; ``static/app.js`` draws the view the path
names. Pages hold no data, so they need no token: the script sends the teacher's token with
each API call. Display names come from students and are untrusted: the script only ever sets
them as text, and the Content-Security-Policy refuses inline scripts as a second guard.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from bot.web.errors import Handler, is_api_path

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Paths the dashboard draws (everything else is the API, /metrics, static files or the room).
PAGES = ("/", "/classes", "/bots", "/about", "/meetings/{meeting_id}", "/students/{name}")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


def setup_dashboard(app: web.Application) -> None:
    for path in PAGES:
        app.router.add_get(path, index)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Headers that keep the dashboard from being framed, sniffed or scripted from elsewhere."""
    response = await handler(request)
    if response.prepared:  # a stream (the live feed) already sent its headers
        return response
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if not is_api_path(request.path):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response
