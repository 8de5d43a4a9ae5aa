"""``classpulse serve`` against a slowloris: the attacker opens a socket and dribbles a request head;
the server must hang up within its header timeout while everyone else is served as usual."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.cli.serve import serve
from bot.settings import Settings
from tests.web.conftest import AUTH, TOKEN

HEADER_TIMEOUT_S = 1.0
#: The server may close a little after the deadline (timer resolution, a busy test machine).
SLACK_S = 1.5


@pytest.fixture
async def base_url(tmp_path: Path) -> AsyncIterator[str]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'classpulse.db'}",
        data_dir=tmp_path / "data",
        api_token=TOKEN,
        port=0,
        run_bots=False,
        header_timeout_s=HEADER_TIMEOUT_S,
    )
    out = io.StringIO()
    task = asyncio.create_task(serve(settings, out=out))
    deadline = time.monotonic() + 30
    while "serving" not in out.getvalue():
        assert not task.done(), task
        assert time.monotonic() < deadline, "serve did not start"
        await asyncio.sleep(0.05)
    try:
        yield out.getvalue().split()[2].rstrip("/")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _connect(base_url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


async def _dribble_until_closed(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, limit_s: float
) -> float:
    """Sends ``head`` then one header line every 0.2 s, never the empty line that ends the head;
    returns the seconds until the server hung up (or ``limit_s`` when it never did)."""
    started = time.monotonic()
    writer.write(head)
    number = 0
    while time.monotonic() - started < limit_s:
        try:
            answer = await asyncio.wait_for(reader.read(1024), 0.2)
        except TimeoutError:
            number += 1
            try:
                writer.write(f"X-Slow-{number}: {'a' * 5}\r\n".encode())
                await writer.drain()
            except ConnectionError:
                return time.monotonic() - started
            continue
        except ConnectionError:
            return time.monotonic() - started
        assert answer == b"", f"Expected the server to hang up without answering. Got: {answer!r}"
        return time.monotonic() - started
    return limit_s


async def _get_meetings(session: aiohttp.ClientSession, base_url: str) -> int:
    async with session.get(f"{base_url}/api/meetings", headers=AUTH) as response:
        await response.read()
        return response.status


async def test_a_dribbled_first_head_is_cut_off_while_others_are_served(base_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        attackers = [await _connect(base_url) for _ in range(5)]
        head = b"GET /api/meetings HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        attack = asyncio.gather(
            *(_dribble_until_closed(r, w, head, limit_s=10) for r, w in attackers)
        )
        await asyncio.sleep(0.3)
        assert await _get_meetings(session, base_url) == 200  # served during the attack
        held_s = await attack
        for _, writer in attackers:
            writer.close()
        assert all(HEADER_TIMEOUT_S * 0.8 <= s <= HEADER_TIMEOUT_S + SLACK_S for s in held_s), (
            held_s
        )
        assert await _get_meetings(session, base_url) == 200  # and after it


async def test_a_dribbled_second_head_on_a_kept_alive_connection_is_cut_off(
    base_url: str,
) -> None:
    reader, writer = await _connect(base_url)
    request = f"GET /api/meetings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {AUTH['Authorization']}\r\n\r\n"
    writer.write(request.encode())
    status = await asyncio.wait_for(reader.readline(), 5)
    assert status.startswith(b"HTTP/1.1 200"), status
    length = 0
    while (line := await reader.readline()) != b"\r\n":
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    assert await reader.readexactly(length) == b'{"meetings": []}'
    held_s = await _dribble_until_closed(
        reader, writer, b"GET /api/meetings HTTP/1.1\r\n", limit_s=10
    )
    writer.close()
    assert held_s <= HEADER_TIMEOUT_S + SLACK_S, held_s


async def test_a_slow_but_complete_head_is_answered(base_url: str) -> None:
    reader, writer = await _connect(base_url)
    writer.write(b"GET /api/meetings HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    await asyncio.sleep(HEADER_TIMEOUT_S * 0.6)
    writer.write(f"Authorization: {AUTH['Authorization']}\r\n\r\n".encode())
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status.startswith(b"HTTP/1.1 200"), status
