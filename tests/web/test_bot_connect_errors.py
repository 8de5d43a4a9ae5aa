"""A bot sent to a server that is not Janus: ``GET /api/bots/{id}`` says in one line what was
expected and what came back, and repeats nothing the server chose (status line, reason phrase,
headers, banners) nor Python reprs. Real local servers play the misconfigured or hostile peer;
the real bot runtime joins them (without its inference process: the join fails before any frame)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.runtime import BotRuntime, janus_connector
from bot.settings import Settings
from bot.web.app import create_app
from bot.web.bots import one_line
from bot.web.runtime_bots import RuntimeBotManager
from storage import Storage
from tests.web.conftest import AUTH

#: Planted in everything the peers send: it must never reach the API user.
SECRET = "hunter2"
REPRS = ("Error(", "ConnectionKey", "RequestInfo", "CIMultiDict", "URL(", "b'")


async def _web_peer(status: int) -> tuple[web.AppRunner, int]:
    async def answer(_request: web.Request) -> web.Response:
        return web.Response(
            status=status,
            reason=f"Go away {SECRET} <script>",
            headers={
                "X-Leak": f"{SECRET}-header",
                "WWW-Authenticate": f'Basic realm="{SECRET}\\nInjected: yes"',
                "Server": f"evil/{SECRET}",
            },
            text=f"{SECRET} body\r\nHTTP/1.1 200 OK",
        )

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def _raw_peer(reply: bytes) -> tuple[asyncio.Server, int]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def client(settings: Settings, storage: Storage) -> AsyncIterator[TestClient]:
    runtime = BotRuntime(storage, connector_factories=[janus_connector])
    runtime.writer = storage.writer(max_delay_s=0.05)
    runtime._executor = ThreadPoolExecutor(1)  # what __aenter__ makes, minus the model process
    app = create_app(settings, storage=storage, bots=RuntimeBotManager(runtime))
    try:
        async with TestClient(TestServer(app, host="127.0.0.1"), headers=AUTH) as test_client:
            yield test_client
    finally:
        runtime._executor.shutdown()
        await asyncio.to_thread(runtime.writer.close)


async def _failed_bot_error(client: TestClient, port: int) -> str:
    invited = await client.post(
        "/api/bots",
        json={"meeting_url": f"janus+ws://127.0.0.1:{port}/janus?room=1234", "teacher": "Ms Sato"},
    )
    assert invited.status == 201, await invited.text()
    bot_id = (await invited.json())["id"]
    deadline = time.monotonic() + 30
    while True:
        body = await (await client.get(f"/api/bots/{bot_id}")).json()
        if body["state"] == "failed":
            return str(body["error"])
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.1)


def _assert_clean(error: str, port: int, received: str) -> None:
    expected = f"cannot reach Janus: expected a Janus WebSocket server at ws://127.0.0.1:{port}/"
    assert error.startswith(expected), error
    assert f"Received: {received}" in error, error
    assert "\n" not in error and "\r" not in error and len(error) <= 300, error
    assert SECRET not in error, error
    assert not any(marker in error for marker in REPRS), error


@pytest.mark.parametrize(
    ("status", "received"),
    [(401, "HTTP status 401 instead of a WebSocket upgrade"), (200, "HTTP status 200")],
)
async def test_an_http_answer_with_odd_headers_is_named_by_its_status_only(
    client: TestClient, status: int, received: str
) -> None:
    runner, port = await _web_peer(status)
    try:
        _assert_clean(await _failed_bot_error(client, port), port, received)
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("reply", "received"),
    [
        (f"SSH-2.0-{SECRET}_banner\r\n".encode(), "a reply that is not valid HTTP"),
        (
            f"HTTP/1.1 401 {SECRET}\r\nX-Leak: {SECRET}\r\nContent-Length: 0\r\n\r\n".encode(),
            "HTTP status 401",
        ),
        (f"HTTP/1.1 999999 {SECRET}\r\n\r\n".encode(), "a reply that is not valid HTTP"),
        (b"", "the server closed the connection without answering"),
    ],
    ids=["banner", "raw-401", "bad-status", "hang-up"],
)
async def test_garbage_and_hang_ups_are_named_without_echo(
    client: TestClient, reply: bytes, received: str
) -> None:
    server, port = await _raw_peer(reply)
    try:
        _assert_clean(await _failed_bot_error(client, port), port, received)
    finally:
        server.close()


async def test_nothing_listening_is_connection_refused(client: TestClient) -> None:
    port = _closed_port()
    _assert_clean(await _failed_bot_error(client, port), port, "connection refused")


async def test_delete_on_a_failed_bot_keeps_its_failure_as_the_reason(client: TestClient) -> None:
    port = _closed_port()
    error = await _failed_bot_error(client, port)
    [bot] = (await (await client.get("/api/bots")).json())["bots"]
    deleted = await client.delete(f"/api/bots/{bot['id']}")
    assert deleted.status == 200, await deleted.text()
    body = await deleted.json()
    assert body["state"] == "failed" and body["error"] == error
    assert body["stop_reason"] == error  # not "asked to leave"
    again = await (await client.get(f"/api/bots/{bot['id']}")).json()
    assert again["stop_reason"] == error


def test_error_text_is_one_bounded_line() -> None:
    assert one_line("Janus refused join:\n  No such room\r\n\x1b[31m(code 426)") == (
        "Janus refused join: No such room [31m(code 426)"
    )
    assert len(one_line("x" * 1000)) == 300 and one_line("x" * 1000).endswith("…")
