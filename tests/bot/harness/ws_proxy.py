"""A WebSocket relay between a client and Janus that can lie and go silent.

Janus itself never sends garbage, so to prove the connector survives malformed or unknown
messages the test puts this relay in front of the real Janus: ``inject()`` sends any text to the
clients as if Janus had said it, ``cut()`` makes the signalling path a black hole (nothing
forwarded, pings unanswered — what a pulled cable looks like) and ``restore()`` ends that.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from aiohttp import web


class JanusRelay:
    def __init__(self, address: str, upstream_url: str) -> None:
        self.address = address
        self.upstream_url = upstream_url
        self.port = 0
        self.is_cut = False
        self._clients: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.num_connections = 0

    @property
    def websocket_url(self) -> str:
        return f"ws://{self.address}:{self.port}/"

    def meeting_url(self, room: int = 1234, text_room: int = 1234) -> str:
        return f"janus+ws://{self.address}:{self.port}/?room={room}&textroom={text_room}"

    async def start(self) -> JanusRelay:
        self._http = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_get("/", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.address, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for client in list(self._clients):
            await client.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    async def inject(self, text: str | bytes) -> None:
        """Send ``text`` to every connected client as if it came from Janus."""
        for client in list(self._clients):
            if isinstance(text, bytes):
                await client.send_bytes(text)
            else:
                await client.send_str(text)

    def cut(self) -> None:
        self.is_cut = True

    def restore(self) -> None:
        self.is_cut = False

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        client = web.WebSocketResponse(
            protocols=("janus-protocol",), autoping=False, max_msg_size=0
        )
        await client.prepare(request)
        assert self._http is not None
        self.num_connections += 1
        upstream = await self._http.ws_connect(
            self.upstream_url, protocols=("janus-protocol",), max_msg_size=0
        )
        self._clients.add(client)

        async def to_janus() -> None:
            async for message in client:
                if self.is_cut:
                    continue  # a black hole: not even pongs
                if message.type == aiohttp.WSMsgType.PING:
                    await client.pong(message.data)
                elif message.type == aiohttp.WSMsgType.TEXT:
                    await upstream.send_str(message.data)

        async def to_client() -> None:
            async for message in upstream:
                if message.type == aiohttp.WSMsgType.TEXT and not self.is_cut:
                    await client.send_str(message.data)

        tasks = [asyncio.create_task(to_janus()), asyncio.create_task(to_client())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._clients.discard(client)
            await upstream.close()
            await client.close()
        return client
