"""Which ``Host`` a request may name, and which ``Origin`` a room socket may come from.

DNS rebinding: a page on ``evil.example`` whose name is made to resolve to 127.0.0.1 can send
requests to this server from the teacher's own browser. Those requests carry ``Host:
evil.example``; refusing host names the server does not serve (421) stops them. A ``Host`` that
is an IP address cannot be rebound and is always accepted.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from aiohttp import web

from bot.web.errors import Handler, json_error


def host_name(host_header: str) -> str:
    """``"Example.org:8080"`` → ``"example.org"``; ``"[::1]:80"`` → ``"::1"``."""
    text = host_header.strip().lower()
    if text.startswith("["):
        return text[1:].split("]", 1)[0]
    if text.count(":") == 1:
        return text.split(":", 1)[0]
    return text


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_allowed(host_header: str | None, names: frozenset[str]) -> bool:
    if not host_header:
        return False
    name = host_name(host_header)
    return is_ip(name) or name in names


def host_middleware(names: frozenset[str]) -> web.middleware:  # type: ignore[valid-type]
    """Answers 421 to a request whose ``Host`` this server does not serve."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        if not host_allowed(host, names):
            return json_error(
                421,
                f"Expected a Host header naming this server ({sorted(names)} or an IP address). "
                f"Received: {(host or '')[:80]!r}",
            )
        return await handler(request)

    return middleware


def same_origin(request: web.Request) -> bool:
    """A browser's WebSocket must come from a page of this server: ``Origin`` (when sent; only
    browsers send it, and only they can be tricked into connecting) must name our own host."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    host = request.headers.get("Host", "")
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.strip().lower()
