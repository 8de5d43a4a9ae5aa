"""The listening side of ``classpulse serve``: aiohttp's HTTP server behind a request-head deadline.

aiohttp has no header-read timeout of its own: a client that opens a connection and sends its
request line and headers a byte at a time (slowloris) holds a connection for as long as it likes,
and a few hundred of them exhaust the process's file descriptors. Two timers close that door:

- the first request head on a connection must be complete within ``header_timeout_s`` of the
  connection opening (:class:`HeadDeadline`, a thin protocol around aiohttp's own);
- later heads on a kept-alive connection fall under aiohttp's keep-alive timeout, set to the same
  value: aiohttp measures it from the end of the previous response and bytes arriving do not
  reset it, so a half-sent second head is cut off after the same time.

Bodies are not covered here: they are at most ``MAX_BODY_BYTES`` and read by the handlers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

logger = logging.getLogger(__name__)

#: Seconds a client has to send a complete request line and headers.
HEADER_TIMEOUT_S = 10.0
#: A request head ends with an empty line; bare LF line ends are tolerated by some parsers.
_HEAD_ENDS = (b"\r\n\r\n", b"\n\n")


class HeadDeadline(asyncio.Protocol):
    """Forwards everything to ``inner`` (aiohttp's ``RequestHandler``) and closes the
    connection when no complete request head arrived within ``timeout_s`` of it opening."""

    def __init__(self, inner: asyncio.Protocol, timeout_s: float) -> None:
        self.inner = inner
        self.timeout_s = timeout_s
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""  # the last bytes seen, for an empty line split across two reads

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.timeout_s, self._expire)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            seen = self._tail + data
            if any(end in seen for end in _HEAD_ENDS):
                self._disarm()
            else:
                self._tail = seen[-3:]
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self._transport is not None and not self._transport.is_closing():
            logger.debug(
                "closed a connection from %s: no complete request head within %.0f s",
                self._transport.get_extra_info("peername"),
                self.timeout_s,
            )
            self._transport.close()


class GuardedTCPSite(web.BaseSite):
    """``web.TCPSite`` whose connections are wrapped in :class:`HeadDeadline`."""

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, *, header_timeout_s: float
    ) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._header_timeout_s = header_timeout_s

    @property
    def name(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def port(self) -> int:
        """The port listened on (the chosen one when 0 was asked for, once started)."""
        sockets = getattr(self._server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None, "runner.setup() makes the server"
        timeout_s = self._header_timeout_s

        def protocol() -> asyncio.Protocol:
            return HeadDeadline(server(), timeout_s)

        self._server = await asyncio.get_running_loop().create_server(
            protocol,
            self._host,
            self._port,
            backlog=self._backlog,
        )


def make_runner(app: web.Application, *, header_timeout_s: float, **kwargs: Any) -> web.AppRunner:
    """An ``AppRunner`` whose keep-alive timeout bounds the heads after the first one."""
    return web.AppRunner(app, keepalive_timeout=header_timeout_s, **kwargs)
