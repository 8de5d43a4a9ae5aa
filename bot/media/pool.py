"""The media worker processes of one bot runtime: start, route messages, restart the dead.

Sized to the machine by default (one worker per core: the parent's own work — chat, the session,
the inference client — is light once decoding has left it). A worker that dies (crash, OOM kill)
is started again at once and every meeting link that had feeds on it re-subscribes them there;
the gap is counted and reported to the link (``on_worker_restarted``), which records it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import socket
import time
from collections.abc import Callable
from typing import Protocol

from bot.media.wire import (
    Shutdown,
    ToParent,
    ToWorker,
    WorkerReady,
    encode,
    read_message,
)
from bot.media.worker import worker_main
from engine.face_settings import DetectorSettings

logger = logging.getLogger(__name__)

#: Environment variable that sets the number of media workers (1: decode in the bot's process).


class LinkClient(Protocol):
    """What the pool needs of a meeting link that has feeds on workers (``ShardedSubscriber``)."""

    def on_message(self, worker: int, message: ToParent) -> None: ...
    async def on_worker_restarted(self, worker: int, gap_started: float) -> None: ...


class _Worker:
    def __init__(self, index: int) -> None:
        self.index = index
        self.process: multiprocessing.process.BaseProcess | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reader_task: asyncio.Task[None] | None = None
        self.pid = 0
        self.ready = asyncio.Event()
        self.tensorflow_loaded = False


class MediaWorkers:
    """``await start()``, then links ``register`` and ``send``; ``await aclose()`` ends all."""

    def __init__(
        self,
        num_workers: int,
        *,
        start_timeout_s: float = 60.0,
        face_settings: DetectorSettings | None = None,
    ) -> None:
        """``face_settings``: what each worker builds its face stages with (``FaceDetectors``);
        default ``DetectorSettings()``. Sent at spawn: a restarted worker gets them too."""
        if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 1:
            raise ValueError(f"Expected num_workers >= 1. Received: {num_workers!r}")
        self.num_workers = num_workers
        self.start_timeout_s = start_timeout_s
        self.face_settings = face_settings
        self._workers = [_Worker(index) for index in range(num_workers)]
        self._links: dict[int, LinkClient] = {}
        self._load: dict[int, dict[int, int]] = {}  # link → {worker: feeds}
        self._ids = itertools.count(1)
        self._closing = False
        self.num_restarts = 0
        self._restarts: set[asyncio.Task[None]] = set()
        self._context = multiprocessing.get_context("spawn")

    @property
    def tensorflow_loaded(self) -> list[bool]:
        """Per worker: whether it found TensorFlow imported at start (it must not be)."""
        return [worker.tensorflow_loaded for worker in self._workers]

    @property
    def pids(self) -> list[int]:
        return [worker.pid for worker in self._workers if worker.pid]

    async def start(self) -> MediaWorkers:
        await asyncio.gather(*(self._spawn(worker) for worker in self._workers))
        return self

    async def aclose(self) -> None:
        self._closing = True
        for task in list(self._restarts):
            task.cancel()
        await asyncio.gather(*self._restarts, return_exceptions=True)
        for worker in self._workers:
            if worker.writer is not None:
                with contextlib.suppress(Exception):
                    worker.writer.write(encode(Shutdown()))
        for worker in self._workers:
            await self._stop(worker)

    # -- links -----------------------------------------------------------------------------

    def register(self, client: LinkClient) -> int:
        link_id = next(self._ids)
        self._links[link_id] = client
        self._load[link_id] = {}
        return link_id

    def unregister(self, link_id: int) -> None:
        self._links.pop(link_id, None)
        self._load.pop(link_id, None)

    def least_loaded(self) -> int:
        """The worker with the fewest feeds over every link: shards stay even as people come."""
        totals = [0] * self.num_workers
        for per_link in self._load.values():
            for worker, count in per_link.items():
                totals[worker] += count
        return min(range(self.num_workers), key=totals.__getitem__)

    def set_load(self, link_id: int, worker: int, num_feeds: int) -> None:
        if link_id in self._load:
            self._load[link_id][worker] = num_feeds

    def send(self, worker: int, message: ToWorker) -> None:
        """Queue ``message`` for ``worker``; lost silently if it is dead (its restart redoes
        the link's state)."""
        writer = self._workers[worker].writer
        if writer is not None and not writer.is_closing():
            writer.write(encode(message))

    def kill(self, worker: int) -> int:
        """For tests: kill a worker as the OOM killer would; returns its pid."""
        process = self._workers[worker].process
        assert process is not None and process.pid is not None
        process.kill()
        return process.pid

    # -- processes -------------------------------------------------------------------------

    async def _spawn(self, worker: _Worker) -> None:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        process = self._context.Process(
            target=worker_main,
            args=(child_end, logging.getLogger().getEffectiveLevel(), self.face_settings),
            name=f"classpulse-media-{worker.index}",
            daemon=True,
        )
        await asyncio.to_thread(process.start)
        child_end.close()
        worker.process = process
        worker.ready.clear()
        reader, writer = await asyncio.open_unix_connection(sock=parent_end)
        worker.writer = writer
        worker.reader_task = asyncio.create_task(
            self._read(worker, reader), name=f"media-worker-{worker.index}"
        )
        try:
            await asyncio.wait_for(worker.ready.wait(), self.start_timeout_s)
        except TimeoutError:
            raise RuntimeError(
                f"Expected media worker {worker.index} to start within "
                f"{self.start_timeout_s:.0f} s. Received: no answer (exit code "
                f"{process.exitcode})"
            ) from None

    async def _stop(self, worker: _Worker) -> None:
        process, task = worker.process, worker.reader_task
        if process is not None:
            await asyncio.to_thread(process.join, 5)
            if process.is_alive():
                process.kill()
                await asyncio.to_thread(process.join, 5)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if worker.writer is not None:
            worker.writer.close()
        worker.process, worker.writer, worker.reader_task, worker.pid = None, None, None, 0

    async def _read(self, worker: _Worker, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                message = await read_message(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            if isinstance(message, WorkerReady):
                worker.tensorflow_loaded = message.tensorflow_loaded
                if message.tensorflow_loaded:
                    logger.error("media worker %d imported TensorFlow", worker.index)
                worker.pid = message.pid
                worker.ready.set()
                continue
            link = self._links.get(getattr(message, "link_id", -1))
            if link is not None:
                try:
                    link.on_message(worker.index, message)  # type: ignore[arg-type]
                except Exception:  # one link's bug must not stop the worker's other links
                    logger.exception("media message %s failed", type(message).__name__)
        if not self._closing:
            self._restarts.add(
                asyncio.create_task(self._restart(worker), name=f"restart media {worker.index}")
            )

    async def _restart(self, worker: _Worker) -> None:
        try:
            await self._restart_worker(worker)
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._restarts.discard(task)

    async def _restart_worker(self, worker: _Worker) -> None:
        gap_started = time.time()
        exit_code = worker.process.exitcode if worker.process is not None else None
        self.num_restarts += 1
        logger.error("media worker %d died (exit code %s); restarting it", worker.index, exit_code)
        await self._stop(worker)
        delay = 0.0
        while not self._closing:
            try:
                await self._spawn(worker)
                break
            except (RuntimeError, OSError):
                logger.exception("media worker %d did not start again", worker.index)
                delay = min(5.0, delay * 2 or 0.25)
                await asyncio.sleep(delay)
        for link in list(self._links.values()):
            try:
                await link.on_worker_restarted(worker.index, gap_started)
            except Exception:
                logger.exception("re-subscribing on media worker %d failed", worker.index)


#: Builds the worker pool a runtime uses (tests pass their own size).
PoolFactory = Callable[[int], MediaWorkers]
