"""A Ray cluster and a ``classpulse serve --launcher ray`` started by a test, in a namespace.

Everything runs inside the test's :class:`NetworkNamespace` (``nsenter``), where the meeting's
Janus is: the head node and one worker node (``ray start --block``, one CPU each, so that two
classes land on two nodes), the server (a real ``classpulse serve`` subprocess), and the short
driver scripts that look up or kill an actor as an operator would. Ports are the namespace's
own; Ray's files go in a short temp dir (its unix sockets have a length limit). Each process is
a session leader: ``stop()`` ends it with SIGTERM (``ray start --block`` then stops its Ray
processes), then SIGKILLs whatever is left in its process group.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

from tests.bot.harness.netns import NetworkNamespace

RAY_STARTED = "Ray runtime started"


def _clean_environ(extra: dict[str, str]) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CLASSPULSE_", "RAY_"))}
    environ.update({"RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1", **extra})
    return environ


class _Process:
    """One long-running command in the namespace, its output in a log file."""

    def __init__(self, netns: NetworkNamespace, argv: list[str], log: Path, env: dict[str, str]):
        self.log = log
        self._file: IO[bytes] = log.open("wb")
        self.popen = subprocess.Popen(
            netns.command(argv),
            stdout=self._file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def wait_for_line(self, text: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.log.read_text(errors="replace").splitlines():
                if text in line:
                    return line
            if self.popen.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"no {text!r} in {self.log} within {timeout_s} s:\n{self.tail()}")

    def tail(self, num_chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-num_chars:]

    def stop(self, grace_s: float = 20.0) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace_s)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # anything the leader left behind
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        self._file.close()


class RayCluster:
    """Head (GCS on ``port``) plus ``num_workers`` worker nodes, ``num_cpus`` each."""

    def __init__(self, netns: NetworkNamespace, logs: Path, port: int = 6390) -> None:
        self.netns = netns
        self.logs = logs
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.temp_dir = Path(tempfile.mkdtemp(prefix="cpray-", dir="/tmp"))
        self.nodes: list[_Process] = []
        self.env = _clean_environ({})

    def _ray(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "ray.scripts.scripts", "start", *args]

    def start(self, *, num_workers: int = 1, num_cpus: int = 1, timeout_s: float = 90.0) -> None:
        common = ["--node-ip-address", "127.0.0.1", "--num-cpus", str(num_cpus)]
        common += ["--disable-usage-stats", "--block"]
        head = self._ray(
            "--head", "--port", str(self.port), "--include-dashboard", "false",
            "--temp-dir", str(self.temp_dir), *common,
        )  # fmt: skip
        self.nodes.append(_Process(self.netns, head, self.logs / "ray-head.log", self.env))
        self.nodes[0].wait_for_line(RAY_STARTED, timeout_s)
        for index in range(num_workers):
            worker = self._ray("--address", self.address, *common)
            log = self.logs / f"ray-worker-{index}.log"
            self.nodes.append(_Process(self.netns, worker, log, self.env))
        for node in self.nodes[1:]:
            node.wait_for_line(RAY_STARTED, timeout_s)

    def driver(self, script: str, timeout_s: float = 60.0) -> str:
        """Runs a short Python ``script`` connected to the cluster (``ray`` imported, ``ray.init``
        done in namespace ``classpulse``); its stdout."""
        prelude = (
            "import ray, logging\n"
            f"ray.init(address={self.address!r}, namespace='classpulse', "
            "logging_level=logging.ERROR, log_to_driver=False)\n"
        )
        done = subprocess.run(
            self.netns.command([sys.executable, "-c", prelude + script]),
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout_s,
        )
        if done.returncode != 0:
            raise RuntimeError(f"driver script failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done.stdout

    def memory_mb(self) -> dict[str, float]:
        """Resident memory of the cluster's processes by kind (MB), read from /proc."""
        totals: dict[str, float] = {}
        for node in self.nodes:
            for pid in _descendants(node.popen.pid):
                with contextlib.suppress(OSError):
                    name = _kind(pid)
                    rss_kb = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * 4
                    totals[name] = totals.get(name, 0.0) + rss_kb / 1024
        return totals

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _kind(pid: int) -> str:
    """A process's kind: its title (``ray::BotActor``, ``raylet``…), or for Python processes
    what they run (the bot's inference process is a multiprocessing child)."""
    name = Path(f"/proc/{pid}/comm").read_text().strip()
    if not name.startswith("python"):
        return name
    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    if "multiprocessing" in command:
        return "python (spawned by an actor: inference)"
    if "default_worker.py" in command:
        return "python (idle Ray worker)"
    return "python (Ray services)"


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it (Ray's workers leave its process group)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parent = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


class ServerProcess:
    """``classpulse serve --launcher ray`` in the namespace; ``base`` is its URL."""

    def __init__(
        self, netns: NetworkNamespace, cluster: RayCluster, database_url: str, folder: Path
    ) -> None:
        self.token = "launch-test-token-" + os.urandom(8).hex()
        argv = [
            sys.executable, "-m", "bot.cli", "serve", "--launcher", "ray",
            "--ray-address", cluster.address, "--port", "0", "--database-url", database_url,
            "--data-dir", str(folder / "data"),
        ]  # fmt: skip
        env = _clean_environ({"CLASSPULSE_API_TOKEN": self.token, "CLASSPULSE_MAX_BOTS": "4"})
        self.process = _Process(netns, argv, folder / "server.log", env)
        self.base = ""

    def start(self, timeout_s: float = 60.0) -> ServerProcess:
        line = self.process.wait_for_line("classpulse: serving", timeout_s)
        self.base = line.split("serving ", 1)[1].split()[0].rstrip("/")
        return self

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self) -> None:
        self.process.stop(grace_s=60.0)
