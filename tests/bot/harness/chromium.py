"""A headless Chromium student: Debian's chromium, fake camera from a Y4M, inside the namespace.

A real browser's VP8 encoder, ICE and DTLS stack, with our own small page doing Janus signalling
(``student_page.html``). The page is served by an aiohttp app in the test process, which runs
inside the namespace too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

from tests.bot.harness.netns import NetworkNamespace

PAGE = Path(__file__).with_name("student_page.html")


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class PageServer:
    """Serves the student page on ``address`` (an ephemeral port)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> PageServer:
        app = web.Application()
        app.router.add_get("/student.html", self._page)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.address, 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(PAGE)

    def student_url(
        self,
        *,
        websocket_url: str,
        room: int,
        display: str,
        simulcast: bool = False,
        pin: str | None = None,
    ) -> str:
        query = {
            "ws": websocket_url,
            "room": str(room),
            "display": display,
            "simulcast": "1" if simulcast else "0",
        }
        if pin:
            query["pin"] = pin
        return f"http://{self.address}:{self.port}/student.html?{urlencode(query)}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class ChromiumStudent:
    """One headless Chromium process showing the student page."""

    def __init__(self, netns: NetworkNamespace, y4m: Path, page_url: str, workdir: Path) -> None:
        self.netns = netns
        self.y4m = y4m.resolve()
        self.page_url = page_url
        self.workdir = workdir
        self.log_path = workdir / "chromium.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ChromiumStudent:
        binary = chromium_binary()
        if binary is None:
            raise FileNotFoundError("chromium is not installed")
        profile = self.workdir / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        argv = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={self.y4m}",
            "--allow-loopback-in-peer-connection",
            "--disable-features=WebRtcHideLocalIpsWithMdns",
            "--autoplay-policy=no-user-gesture-required",
            "--enable-logging=stderr",
            "--v=0",
            self.page_url,
        ]
        log = self.log_path.open("ab")
        # Its own process group: Chromium forks helpers, and stop() ends them all by group id.
        self._process = subprocess.Popen(
            self.netns.command(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def console_lines(self) -> list[str]:
        """The page's status lines, oldest first."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [
            line.split("classpulse-student: ", 1)[1].split('"', 1)[0]
            for line in text.splitlines()
            if "classpulse-student: " in line
        ]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
