"""A throwaway network namespace with a veth pair carrying an address in 127.0.0.0/8.

Why: Janus gathers no ICE candidates on interfaces flagged LOOPBACK and aioice drops 127.0.0.1,
yet tests may only use 127.0.0.0/8. A veth end is not a loopback interface, so an address such as
127.0.0.2 on it gives every peer (Janus, aiortc, Chromium) a usable host candidate, inside a
namespace that nobody else can reach and that vanishes with its last process.

How (Python 3.11 has no ``os.setns``):
- a holder process ``unshare --net`` keeps the namespace alive; it reads its stdin, so it exits
  as soon as the test process dies (the pipe closes) and the namespace goes with it;
- servers and browsers start inside it through ``nsenter --net=/proc/<holder>/ns/net`` with
  ``setpriv --pdeathsig KILL``, so they die with the test process too;
- the test's own thread (the one running the asyncio loop; pytest-asyncio runs it on the main
  thread) joins the namespace with ``setns(2)`` through ctypes. Network namespaces are per thread
  in Linux; sockets keep the namespace they were created in, so everything the test opens while
  inside (aiohttp, aioice, aiortc) lives there, and leaving restores the thread for the next test.
  Threads started while inside inherit the namespace; aiortc's codec threads open no sockets.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

CLONE_NEWNET = 0x40000000


def missing_tools() -> list[str]:
    """The commands this module needs that are not installed."""
    return [tool for tool in ("unshare", "nsenter", "setpriv", "ip") if shutil.which(tool) is None]


class NetworkNamespace:
    """A namespace with ``lo`` up and a veth pair ``cp0``/``cp1``; ``address`` is on ``cp0``."""

    def __init__(self, address: str = "127.0.0.2") -> None:
        if not address.startswith("127."):
            raise ValueError(f"Expected an address in 127.0.0.0/8. Received: {address!r}")
        self.address = address
        self.interface = "cp0"
        self._holder: subprocess.Popen[bytes] | None = None
        self._libc = ctypes.CDLL(None, use_errno=True)

    @property
    def path(self) -> Path:
        if self._holder is None:
            raise RuntimeError("namespace not created")
        return Path(f"/proc/{self._holder.pid}/ns/net")

    def create(self) -> NetworkNamespace:
        self._holder = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c", "read _ignored; exit 0"], stdin=subprocess.PIPE
        )
        # The holder is in its namespace once its ns/net link differs from ours.
        ours = os.readlink("/proc/self/ns/net")
        for _ in range(500):
            try:
                if os.readlink(self.path) != ours:
                    break
            except FileNotFoundError:
                pass
            threading.Event().wait(0.01)
        else:
            self.close()
            raise RuntimeError("unshare --net did not create a namespace in 5 s")
        script = (
            "set -e; ip link set lo up; ip link add cp0 type veth peer name cp1; "
            f"ip addr add {self.address}/32 dev cp0; ip link set cp0 up; ip link set cp1 up"
        )
        subprocess.run(
            self.command(["sh", "-c", script]), check=True, capture_output=True, timeout=10
        )
        return self

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the namespace, killed when the test process dies."""
        return ["setpriv", "--pdeathsig", "KILL", "nsenter", f"--net={self.path}", "--", *argv]

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Move the calling thread into the namespace for the duration of the block."""
        original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(self.path, os.O_RDONLY)
        try:
            self._setns(target)
            try:
                yield
            finally:
                self._setns(original)
        finally:
            os.close(target)
            os.close(original)

    def is_current_thread_inside(self) -> bool:
        return os.readlink("/proc/thread-self/ns/net") == os.readlink(self.path)

    def close(self) -> None:
        holder, self._holder = self._holder, None
        if holder is None:
            return
        with contextlib.suppress(OSError):
            if holder.stdin:
                holder.stdin.close()
        try:
            holder.wait(timeout=5)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()

    def _setns(self, fd: int) -> None:
        if self._libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(
                errno, f"setns(CLONE_NEWNET) failed: {os.strerror(errno)} (tests need root)"
            )
