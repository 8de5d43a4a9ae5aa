"""Janus (Debian's package) started by a test, inside a :class:`NetworkNamespace`.

Configuration is a copy of ``/etc/janus`` in a temp dir with the main file, the WebSocket
transport, VideoRoom and TextRoom rewritten: only those plugins and that transport load, ICE is
pinned to the namespace's veth interface, and the rooms live in the config files so that they
survive a restart (rooms created over the API would vanish with the process).
"""

from __future__ import annotations

import contextlib
import glob
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.bot.harness.netns import NetworkNamespace

_KEEP_PLUGINS = {"libjanus_videoroom.so", "libjanus_textroom.so"}
_KEEP_TRANSPORTS = {"libjanus_websockets.so"}


def janus_binary() -> str | None:
    return shutil.which("janus")


def _library_folder(kind: str) -> Path:
    matches = sorted(glob.glob(f"/usr/lib/*/janus/{kind}")) or sorted(
        glob.glob(f"/usr/lib/janus/{kind}")
    )
    if not matches:
        raise FileNotFoundError(
            f"Expected Janus {kind} under /usr/lib/*/janus/. Received: nothing there"
        )
    return Path(matches[0])


@dataclass(frozen=True, slots=True)
class RoomConfig:
    video_room: int = 1234
    text_room: int = 1234
    pin: str | None = None
    max_publishers: int = 24
    bitrate_bps: int = 600_000
    #: Janus's ``videocodec`` list: what publishers may send.
    video_codecs: str = "vp8,h264"
    #: Announce participants who join without publishing.
    notify_joining: bool = False


class JanusServer:
    """One Janus process; ``start``/``kill``/``restart`` keep the same address, port and rooms."""

    def __init__(
        self,
        netns: NetworkNamespace,
        workdir: Path,
        rooms: RoomConfig = RoomConfig(),
        port: int = 8188,
    ) -> None:
        self.netns = netns
        self.workdir = workdir
        self.rooms = rooms
        self.port = port
        self.config_dir = workdir / "janus-config"
        self.log_path = workdir / "janus.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.num_starts = 0

    @property
    def address(self) -> str:
        return self.netns.address

    @property
    def websocket_url(self) -> str:
        return f"ws://{self.address}:{self.port}/"

    def meeting_url(self, **extra: str) -> str:
        """A ``janus+ws://`` meeting URL for the configured rooms."""
        query = f"room={self.rooms.video_room}&textroom={self.rooms.text_room}"
        if self.rooms.pin:
            query += f"&pin={self.rooms.pin}"
        for key, value in extra.items():
            query += f"&{key}={value}"
        return f"janus+ws://{self.address}:{self.port}/?{query}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process and self._process.poll() is None else None

    def write_config(self) -> None:
        if self.config_dir.exists():
            shutil.rmtree(self.config_dir)
        shutil.copytree("/etc/janus", self.config_dir)
        plugins, transports = _library_folder("plugins"), _library_folder("transports")
        disabled_plugins = sorted(
            p.name for p in plugins.glob("*.so") if p.name not in _KEEP_PLUGINS
        )
        disabled_transports = sorted(
            p.name for p in transports.glob("*.so") if p.name not in _KEEP_TRANSPORTS
        )
        (self.config_dir / "janus.jcfg").write_text(
            f"""general: {{
	configs_folder = "{self.config_dir}"
	plugins_folder = "{plugins}"
	transports_folder = "{transports}"
	events_folder = "{plugins.parent / "events"}"
	loggers_folder = "{plugins.parent / "loggers"}"
	debug_level = 4
	session_timeout = 60
}}
certificates: {{
}}
media: {{
	rtp_port_range = "20000-40000"
}}
nat: {{
	nice_debug = false
	ice_enforce_list = "{self.netns.interface}"
}}
plugins: {{
	disable = "{",".join(disabled_plugins)}"
}}
transports: {{
	disable = "{",".join(disabled_transports)}"
}}
loggers: {{
	disable = "libjanus_jsonlog.so"
}}
events: {{
	broadcast = false
}}
"""
        )
        (self.config_dir / "janus.transport.websockets.jcfg").write_text(
            f"""general: {{
	json = "compact"
	ws = true
	ws_port = {self.port}
	ws_ip = "{self.address}"
	wss = false
}}
admin: {{
	admin_ws = false
	admin_wss = false
}}
"""
        )
        pin = f'\n\tpin = "{self.rooms.pin}"' if self.rooms.pin else ""
        (self.config_dir / "janus.plugin.videoroom.jcfg").write_text(
            f"""general: {{
}}
room-{self.rooms.video_room}: {{
	description = "classpulse test class"
	secret = "adminpwd"{pin}
	publishers = {self.rooms.max_publishers}
	bitrate = {self.rooms.bitrate_bps}
	fir_freq = 10
	videocodec = "{self.rooms.video_codecs}"
	notify_joining = {str(self.rooms.notify_joining).lower()}
	record = false
}}
"""
        )
        (self.config_dir / "janus.plugin.textroom.jcfg").write_text(
            f"""general: {{
	json = "compact"
}}
room-{self.rooms.text_room}: {{
	description = "classpulse test chat"
	secret = "adminpwd"{pin}
}}
"""
        )

    def start(self, timeout_s: float = 15.0) -> None:
        if self.pid is not None:
            raise RuntimeError("Janus is already running")
        if not self.config_dir.exists():
            self.write_config()
        log = self.log_path.open("ab")
        argv = [
            "janus",
            "-C",
            str(self.config_dir / "janus.jcfg"),
            "-F",
            str(self.config_dir),
            "-o",
            "-i",
            self.address,
        ]
        self._process = subprocess.Popen(
            self.netns.command(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        self.num_starts += 1
        deadline = time.monotonic() + timeout_s
        with self.netns.entered():
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(
                        f"janus exited with {self._process.returncode}; log tail:\n"
                        f"{self.log_tail()}"
                    )
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection((self.address, self.port), timeout=0.5),
                ):
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"janus did not listen on {self.websocket_url} in {timeout_s} s:\n"
                        f"{self.log_tail()}"
                    )
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: a crash, as far as clients can tell."""
        self._stop(signal.SIGKILL)

    def stop(self) -> None:
        self._stop(signal.SIGTERM)

    def restart(self) -> None:
        self.kill()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP: the server (and every socket of it) goes silent, like a cut network."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def log_tail(self, num_chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-num_chars:]
        except FileNotFoundError:
            return ""

    def _stop(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # setpriv and nsenter exec into janus, so the pid is janus's own.
        process.send_signal(sig)
        if sig == signal.SIGTERM:
            process.send_signal(signal.SIGCONT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
