"""Headless Chromium driven over the DevTools protocol (aiohttp's WebSocket client), for the room.

Debian's ``chromium`` with a fake camera reading a Y4M file made at test time; pages are opened in
their own windows (one browser process for every participant keeps the test's CPU modest) and
read through ``window.classpulse``, the state object ``room.js`` keeps for exactly this.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
import av
import cv2
import numpy as np

CHROMIUM = "/usr/bin/chromium"


def find_chromium() -> str | None:
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


def write_y4m(frames: Iterable[np.ndarray], path: Path, *, fps: int = 15) -> Path:
    """Raw 4:2:0 Y4M with the plain ``C420`` tag that Chromium's file capture reads (and loops)."""
    with path.open("wb") as out:
        for index, bgr in enumerate(frames):
            height, width = bgr.shape[:2]
            if index == 0:
                out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420\n".encode())
            yuv = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format="yuv420p")
            out.write(b"FRAME\n")
            for plane, plane_width, plane_height in (
                (0, width, height),
                (1, width // 2, height // 2),
                (2, width // 2, height // 2),
            ):
                data = np.frombuffer(bytes(yuv.planes[plane]), np.uint8).reshape(
                    plane_height, yuv.planes[plane].line_size
                )
                out.write(data[:, :plane_width].tobytes())
    return path


def is_blank(png: bytes, *, min_std: float = 8.0) -> bool:
    """A screenshot that is one flat colour (or not an image at all)."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    return image is None or image.size == 0 or float(image.std()) < min_std


class DevToolsError(Exception):
    pass


class Page:
    """One window, attached with a flat DevTools session."""

    def __init__(self, browser: Browser, session_id: str, target_id: str) -> None:
        self.browser = browser
        self.session_id = session_id
        self.target_id = target_id

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.browser.send(method, params, session_id=self.session_id)

    async def evaluate(self, expression: str) -> Any:
        reply = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in reply:
            raise DevToolsError(f"{expression[:80]}: {reply['exceptionDetails']}")
        return reply.get("result", {}).get("value")

    async def wait_for(self, expression: str, timeout: float = 20.0, interval: float = 0.2) -> Any:
        """Poll ``expression`` until it is truthy; returns its value."""
        last: Any = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    last = await self.evaluate(expression)
                    if last:
                        return last
                    await asyncio.sleep(interval)
        except TimeoutError:
            state = await self.evaluate("JSON.stringify(window.classpulse || null)")
            raise TimeoutError(
                f"{expression!r} still {last!r} after {timeout} s; page state: {state}"
            ) from None

    async def screenshot(self, clip: dict[str, float] | None = None) -> bytes:
        params: dict[str, Any] = {"format": "png"}
        if clip is not None:
            params["clip"] = {**clip, "scale": 1}
        reply = await self.send("Page.captureScreenshot", params)
        return base64.b64decode(reply["data"])


class Browser:
    """A headless Chromium with a fake camera; ``await Browser.launch(...)``, then ``close()``."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        socket: aiohttp.ClientWebSocketResponse,
        session: aiohttp.ClientSession,
    ) -> None:
        self.process = process
        self.socket = socket
        self.session = session
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def launch(
        cls, executable: str, profile_dir: Path, fake_camera: Path, *, timeout: float = 30.0
    ) -> Browser:
        profile_dir.mkdir(parents=True, exist_ok=True)
        arguments = [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile_dir}",
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={fake_camera.resolve()}",
            # Chromium gathers no ICE candidates on loopback interfaces unless told to; the room
            # on 127.0.0.1 offers 127.0.0.1 (bot.room.ice), so both ends stay on loopback.
            "--allow-loopback-in-peer-connection",
            # Several windows of one browser: none of them may be throttled as "in background".
            "--disable-background-timer-throttling",
            "--disable-backgrounding-occluded-windows",
            "--disable-renderer-backgrounding",
            "--window-size=1280,800",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ]
        process = subprocess.Popen(
            arguments,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile_dir / "DevToolsActivePort"
        try:
            async with asyncio.timeout(timeout):
                while not port_file.is_file() or len(port_file.read_text().splitlines()) < 2:
                    if process.poll() is not None:
                        raise DevToolsError(
                            f"chromium exited with {process.returncode} before DevTools was up"
                        )
                    await asyncio.sleep(0.1)
            port, path = port_file.read_text().splitlines()[:2]
            session = aiohttp.ClientSession()
            socket = await session.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=64 << 20)
        except BaseException:
            process.kill()
            process.wait()
            raise
        return cls(process, socket, session)

    async def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session_id: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await self.socket.send_json(message)
        async with asyncio.timeout(timeout):
            reply = await future
        if "error" in reply:
            raise DevToolsError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def open(self, url: str) -> Page:
        """A new window showing ``url``."""
        target = await self.send("Target.createTarget", {"url": url, "newWindow": True})
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"], target["targetId"])
        await page.send("Runtime.enable")
        await page.send("Page.enable")
        return page

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self.send("Browser.close")
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.session.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    async def _read(self) -> None:
        async for message in self.socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            future = self._pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
