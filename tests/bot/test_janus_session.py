"""The Janus WebSocket session against a small scripted fake server on 127.0.0.1: transactions
(sync, ack-then-event, errors, silence), routing, garbage, keepalive and loss. The real Janus is
exercised by the e2e modules; this fake makes the corner cases quick and exact.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import WSMsgType, web

from bot.meetings.janus_session import JanusConnectionLostError, JanusError, JanusSession

SESSION_ID, HANDLE_ID = 1001, 2001


class FakeJanus:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.clients: list[web.WebSocketResponse] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> FakeJanus:
        app = web.Application()
        app.router.add_get("/", self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def push(self, message: str | dict[str, Any]) -> None:
        for client in self.clients:
            await client.send_str(message if isinstance(message, str) else json.dumps(message))

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("janus-protocol",))
        await ws.prepare(request)
        self.clients.append(ws)
        async for frame in ws:
            if frame.type == WSMsgType.TEXT:
                message = json.loads(frame.data)
                self.received.append(message)
                await self._answer(ws, message)
        return ws

    async def _answer(self, ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
        kind, transaction = message["janus"], message["transaction"]
        reply: dict[str, Any] = {"transaction": transaction, "session_id": SESSION_ID}
        if kind == "create":
            await ws.send_json({**reply, "janus": "success", "data": {"id": SESSION_ID}})
        elif kind == "attach":
            await ws.send_json({**reply, "janus": "success", "data": {"id": HANDLE_ID}})
        elif kind in ("keepalive", "destroy"):
            await ws.send_json({**reply, "janus": "ack" if kind == "keepalive" else "success"})
        elif kind == "message":
            request = message["body"]["request"]
            plugindata = {"plugin": "janus.plugin.videoroom", "data": {"videoroom": request}}
            if request == "sync":
                await ws.send_json(
                    {**reply, "janus": "success", "sender": HANDLE_ID, "plugindata": plugindata}
                )
            elif request == "core-error":
                await ws.send_json(
                    {**reply, "janus": "error", "error": {"code": 458, "reason": "No such session"}}
                )
            else:
                await ws.send_json({**reply, "janus": "ack"})
                if request == "async":
                    jsep = {"type": "offer", "sdp": "v=0"}
                    await ws.send_json(
                        {
                            **reply,
                            "janus": "event",
                            "sender": HANDLE_ID,
                            "plugindata": plugindata,
                            "jsep": jsep,
                        }
                    )
                elif request == "plugin-error":
                    data = {"videoroom": "event", "error_code": 426, "error": "No such room (9)"}
                    await ws.send_json(
                        {
                            **reply,
                            "janus": "event",
                            "sender": HANDLE_ID,
                            "plugindata": {"data": data},
                        }
                    )
                # "silent": an ack and then nothing


@pytest_asyncio.fixture
async def fake_janus() -> AsyncIterator[FakeJanus]:
    server = await FakeJanus().start()
    yield server
    await server.stop()


async def test_requests_get_their_replies_and_refusals_raise(fake_janus: FakeJanus) -> None:
    session = await JanusSession.connect(
        fake_janus.url, api_secret="s3", token="tk", request_timeout_s=0.5
    )
    try:
        assert session.id == SESSION_ID
        handle = await session.attach("janus.plugin.videoroom")
        assert handle.id == HANDLE_ID
        assert (await handle.request({"request": "sync"})).data == {"videoroom": "sync"}
        reply = await handle.request({"request": "async"}, {"type": "answer", "sdp": "v=0"})
        assert reply.data == {"videoroom": "async"} and reply.jsep == {
            "type": "offer",
            "sdp": "v=0",
        }
        with pytest.raises(JanusError, match="No such room") as refused:
            await handle.request({"request": "plugin-error"})
        assert refused.value.code == 426
        with pytest.raises(JanusError, match="No such session"):
            await handle.request({"request": "core-error"})
        with pytest.raises(JanusConnectionLostError, match="did not answer"):
            await handle.request({"request": "silent"})
        assert not session.is_lost  # one slow reply is not a lost connection
    finally:
        await session.close()
    sent = fake_janus.received
    assert all(m.get("apisecret") == "s3" and m.get("token") == "tk" for m in sent)
    assert all(m.get("session_id") == SESSION_ID for m in sent if m["janus"] != "create")
    assert len({m["transaction"] for m in sent}) == len(sent)
    assert sent[-1]["janus"] == "destroy"


async def test_garbage_is_dropped_and_events_reach_their_handle(fake_janus: FakeJanus) -> None:
    session = await JanusSession.connect(fake_janus.url)
    try:
        handle = await session.attach("janus.plugin.videoroom")
        for junk in ["{", "[]", "null", '"text"', '{"janus": 1}', '{"no": "kind"}']:
            await fake_janus.push(junk)
        await fake_janus.push(
            {"janus": "event", "sender": 999, "plugindata": {"data": {"videoroom": "other handle"}}}
        )
        await fake_janus.push(
            {"janus": "event", "sender": HANDLE_ID, "plugindata": {"data": ["not", "a", "dict"]}}
        )
        await fake_janus.push(
            {
                "janus": "event",
                "sender": HANDLE_ID,
                "plugindata": {"data": {"videoroom": "news"}},
                "jsep": {"type": "offer"},
            }
        )
        await fake_janus.push({"janus": "webrtcup", "sender": HANDLE_ID})
        first = await asyncio.wait_for(handle.events.get(), 2)
        second = await asyncio.wait_for(handle.events.get(), 2)
        third = await asyncio.wait_for(handle.events.get(), 2)
        assert (first.kind, first.data) == ("event", {})
        assert (second.data, second.jsep) == (
            {"videoroom": "news"},
            None,
        )  # a jsep without sdp is no jsep
        assert third.kind == "webrtcup"
        assert session.num_dropped_messages == 6
        assert (await handle.request({"request": "sync"})).data == {
            "videoroom": "sync"
        }  # still usable
    finally:
        await session.close()


async def test_keepalives_flow_and_a_closed_socket_is_noticed(fake_janus: FakeJanus) -> None:
    session = await JanusSession.connect(fake_janus.url, keepalive_s=0.1)
    handle = await session.attach("janus.plugin.videoroom")
    await asyncio.sleep(0.45)
    assert sum(1 for m in fake_janus.received if m["janus"] == "keepalive") >= 3
    pending = asyncio.create_task(handle.request({"request": "silent"}, timeout=10))
    await asyncio.sleep(0.05)
    for client in fake_janus.clients:
        await client.close()
    reason = await asyncio.wait_for(session.wait_lost(), 5)
    assert "closed" in reason
    with pytest.raises(JanusConnectionLostError):
        await pending
    with pytest.raises(JanusConnectionLostError):
        await handle.request({"request": "sync"})
    await session.close()


async def test_session_timeout_notice_means_lost(fake_janus: FakeJanus) -> None:
    session = await JanusSession.connect(fake_janus.url)
    await fake_janus.push({"janus": "timeout", "session_id": SESSION_ID})
    assert "timed the session out" in await asyncio.wait_for(session.wait_lost(), 2)
    await session.close()


async def test_unreachable_server_and_bad_keepalive_are_clear_errors() -> None:
    with pytest.raises(JanusConnectionLostError, match="cannot reach Janus"):
        await JanusSession.connect("ws://127.0.0.1:1/")
    with pytest.raises(ValueError, match="keepalive_s"):
        await JanusSession.connect("ws://127.0.0.1:1/", keepalive_s=60)
