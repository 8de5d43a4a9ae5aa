"""One short phrase for why a meeting server could not be reached, safe to show to API users.

aiohttp's exceptions carry the peer's status line, reason phrase and response headers (and our
own request headers) in their ``repr``; a meeting URL pointed at a hostile or misconfigured server
would have them stored with the bot and shown on the dashboard. :func:`describe_connection_error`
keeps only what we decide ourselves: a status code, an errno, a fixed phrase per kind of failure.
The full exception goes to the log at DEBUG for whoever runs the server.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import ssl

import aiohttp

logger = logging.getLogger(__name__)

#: Hints for handshake status codes a Janus deployment commonly answers.
_STATUS_HINTS = {
    401: "refused: a proxy in front of Janus wants a login",
    403: "refused by the server or a proxy in front of it",
    404: "no WebSocket endpoint at this path",
    200: "an ordinary web page, not a WebSocket endpoint",
}


def describe_connection_error(error: BaseException) -> str:
    """What went wrong, in a few words that contain nothing the peer chose (beyond a number)."""
    logger.debug("meeting server connection failed", exc_info=error)
    if isinstance(error, aiohttp.WSServerHandshakeError):
        if error.status == 101:
            return "a WebSocket upgrade with an invalid handshake"
        hint = _STATUS_HINTS.get(error.status)
        status = f"HTTP status {_status(error.status)} instead of a WebSocket upgrade"
        return f"{status} ({hint})" if hint else status
    if isinstance(error, aiohttp.ClientResponseError):
        # Outside the handshake aiohttp raises this for a reply it could not parse as HTTP.
        return "a reply that is not valid HTTP (is this the Janus WebSocket port?)"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without answering"
    if isinstance(error, aiohttp.ClientSSLError | ssl.SSLError):
        return "a TLS error (certificate not trusted, or not a TLS port)"
    if isinstance(error, aiohttp.ClientConnectorError):
        return _os_error(error.os_error)
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if isinstance(error, OSError):
        return _os_error(error)
    if isinstance(error, aiohttp.InvalidURL):
        return "an address that cannot be connected to"
    return f"an unexpected {type(error).__name__} (details in the server's log at DEBUG)"


def _os_error(error: OSError) -> str:
    if isinstance(error, socket.gaierror):
        return "the host name did not resolve"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (nothing listens on that port)"
    if isinstance(error, ConnectionResetError):
        return "the connection was reset by the server"
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if error.errno is not None and error.errno in errno.errorcode:
        return os.strerror(error.errno).lower()
    return f"a network error ({type(error).__name__})"


def _status(value: object) -> str:
    return str(value) if isinstance(value, int) and 100 <= value <= 999 else "(invalid)"
