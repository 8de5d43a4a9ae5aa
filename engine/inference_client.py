"""Inference client: feeds the inference process from the media process and survives its death.

Importing this module never imports TensorFlow: the process it starts does (spawn context). Crops
wait in one bounded queue; a worker thread sends everything pending as one batch whenever the
process is idle (so at most one batch is in flight and the pipe never queues), and hands the
scores back to a sync ``get_scores`` or an ``async for`` over ``results()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from engine.backoff import Backoff
from engine.inference import InferenceSettings, serve
from engine.types import FACE_SIZE, InferenceStats, Scores

logger = logging.getLogger(__name__)

#: A process that cannot start (e.g. missing weights) is retried from 1 s up to every 30 s.
_RESTART_BACKOFF = Backoff(initial_s=1.0, max_s=30.0, jitter=0.1)

#: Environment the inference process starts with: one BLAS thread (the numpy LSTM head is 30×
#: slower with OpenBLAS threads spinning against TensorFlow's) and quiet TensorFlow start-up logs.
_CHILD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
_ENV_LOCK = threading.Lock()
#: Scores kept for a consumer that is not reading; beyond it the oldest are dropped.
_MAX_RESULTS = 65536


class InferenceError(RuntimeError):
    """The inference process could not start (bad model file, out of memory, ...)."""


class InferenceClient:
    """Submit crops per person, receive ``Scores``; restarts the inference process when it dies.

    Use as ``with InferenceClient(settings) as client:`` or ``async with``. ``submit`` never blocks
    unless asked to (``block=True``, for offline analysis): when inference falls behind, the oldest
    pending frames are dropped and counted in ``stats()``.
    """

    def __init__(
        self,
        settings: InferenceSettings | None = None,
        on_scores: Callable[[list[Scores]], None] | None = None,
    ) -> None:
        self.settings = settings or InferenceSettings()
        #: Called from the worker thread with each batch of scores (instead of queueing them).
        self.on_scores = on_scores
        self._cond = threading.Condition()
        self._pending: deque[tuple[str, float, np.ndarray, float]] = deque()
        self._forget: list[str] = []
        self._results: deque[Scores] = deque(maxlen=_MAX_RESULTS)
        self._latencies: deque[float] = deque(maxlen=2048)
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._counts = dict.fromkeys(
            ("submitted", "scored", "stale", "overflow", "restart", "restarts"), 0
        )
        self._in_flight = 0
        self._last_batch = 0
        self._last_tick_s = 0.0
        self._device = ""
        self._process: Any = None
        self._conn: Any = None
        self._worker: threading.Thread | None = None
        self._closing = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> InferenceClient:
        """Start the inference process (loads the model: seconds) and the worker thread."""
        if self._worker is not None:
            return self
        self._spawn()
        self._worker = threading.Thread(target=self._work, name="inference-client", daemon=True)
        self._worker.start()
        return self

    async def astart(self) -> InferenceClient:
        return await asyncio.to_thread(self.start)

    @property
    def pid(self) -> int | None:
        """Process id of the inference process now serving (``None`` while restarting)."""
        process = self._process
        return process.pid if process is not None else None

    def close(self) -> None:
        """Stop the worker and the inference process; pending frames are discarded."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=self.settings.tick_timeout_s + 5)
        self._stop_process()
        self._wake_async()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> InferenceClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> InferenceClient:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- input -------------------------------------------------------------------------------

    def submit(self, person_id: str, t: float, crop: np.ndarray, block: bool = False) -> None:
        """Queue one uint8 (48, 48) crop of ``person_id`` taken at ``t`` seconds.

        With ``block=True`` waits for room instead of dropping the oldest pending frame.
        """
        if not (isinstance(crop, np.ndarray) and crop.dtype == np.uint8):
            raise ValueError(f"Expected a uint8 numpy crop. Received: {type(crop).__name__}")
        if crop.shape != (FACE_SIZE, FACE_SIZE):
            raise ValueError(f"Expected a crop of shape (48, 48). Received: shape={crop.shape}")
        with self._cond:
            if self._closing:
                raise RuntimeError("Expected an open InferenceClient. Received: a closed one")
            if block:
                while len(self._pending) >= self.settings.max_pending and not self._closing:
                    self._cond.wait(0.5)
            while len(self._pending) >= self.settings.max_pending:
                self._pending.popleft()  # the oldest frame is the least useful one
                self._counts["overflow"] += 1
            self._pending.append((person_id, float(t), crop, time.monotonic()))
            self._counts["submitted"] += 1
            # The worker waits for a first frame, then for a full batch or its deadline: waking
            # it for every frame in between costs more CPU than the model call per frame.
            if len(self._pending) in (1, self.settings.max_batch):
                self._cond.notify_all()

    def forget(self, person_id: str) -> None:
        """The person left: free their window in the inference process."""
        with self._cond:
            self._forget.append(person_id)

    # -- output ------------------------------------------------------------------------------

    def get_scores(self, timeout: float | None = 0.0) -> list[Scores]:
        """Scores received so far; waits up to ``timeout`` s for one (``None``: no limit)."""
        with self._cond:
            if not self._results and timeout != 0.0:
                self._cond.wait_for(lambda: self._results or self._closing, timeout)
            batch = list(self._results)
            self._results.clear()
            return batch

    async def results(self) -> AsyncIterator[list[Scores]]:
        """``async for batch in client.results()``: batches of scores until the client closes."""
        loop = asyncio.get_running_loop()
        waiter = (loop, asyncio.Event())
        self._waiters.add(waiter)
        try:
            while True:
                waiter[1].clear()
                batch = self.get_scores(0.0)
                if batch:
                    yield batch
                    continue
                if self._closing:
                    return
                await waiter[1].wait()
        finally:
            self._waiters.discard(waiter)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every submitted frame is scored or dropped; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: (not self._pending and not self._in_flight) or self._closing, timeout
            )

    def stats(self) -> InferenceStats:
        with self._cond:
            latencies = np.asarray(self._latencies) if self._latencies else np.zeros(1)
            return InferenceStats(
                submitted=self._counts["submitted"],
                scored=self._counts["scored"],
                dropped_stale=self._counts["stale"],
                dropped_overflow=self._counts["overflow"],
                dropped_restart=self._counts["restart"],
                pending=len(self._pending) + self._in_flight,
                restarts=self._counts["restarts"],
                latency_p50_s=float(np.percentile(latencies, 50)),
                latency_p95_s=float(np.percentile(latencies, 95)),
                last_batch=self._last_batch,
                last_tick_s=self._last_tick_s,
                device=self._device,
            )

    # -- the inference process -----------------------------------------------------------------

    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=serve, args=(child, self.settings), name="classpulse-inference", daemon=True
        )
        with _ENV_LOCK:  # the child copies os.environ when it starts; restore ours right after
            saved = {key: os.environ.get(key) for key in _CHILD_ENV}
            os.environ.update({k: v for k, v in _CHILD_ENV.items() if saved[k] is None})
            try:
                process.start()
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
        child.close()  # only the child holds its end now: its death reads as EOF here
        deadline = time.monotonic() + self.settings.start_timeout_s
        try:
            while not parent.poll(0.2):
                if self._closing or time.monotonic() > deadline:
                    process.kill()
                    process.join(5)
                    raise InferenceError(
                        "Expected the inference process to load the model within "
                        f"{self.settings.start_timeout_s:.0f} s. Received: "
                        + ("close() while starting" if self._closing else "no answer")
                    )
            message = parent.recv()
        except (EOFError, OSError) as error:
            message = ("error", f"the process exited while starting ({error or 'EOF'})")
        if message[0] != "ready":
            process.join(5)
            raise InferenceError(
                f"Expected the inference process to start. Received: {message[1]} "
                f"(exit code {process.exitcode})"
            )
        self._process, self._conn = process, parent
        self._device = f"{message[1]['device']} ({message[1]['encoder']} encoder)"

    def _stop_process(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            with contextlib.suppress(OSError, ValueError):
                conn.send(("close",))
            conn.close()
        if process is not None:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)

    def _work(self) -> None:
        """Worker thread: send one batch when the process is idle, read its scores, repeat."""
        delays = _RESTART_BACKOFF.delays()
        while not self._closing:
            if self._process is None:
                try:
                    self._spawn()
                    delays = _RESTART_BACKOFF.delays()
                except InferenceError as error:
                    if self._closing:
                        break
                    logger.error("inference process failed to restart: %s", error)
                    with self._cond:
                        self._cond.wait(next(delays))
                    continue
            if not self._process.is_alive():
                logger.warning(
                    "inference process exited (code %s); restarting", self._process.exitcode
                )
                with self._cond:
                    self._counts["restarts"] += 1
                self._stop_process()
                continue
            batch, forget = self._next_batch()
            if batch is None:
                continue
            try:
                self._tick(batch, forget)
            except (EOFError, OSError, TimeoutError) as error:
                logger.warning("inference process lost (%r); restarting", error)
                with self._cond:
                    self._counts["restart"] += len(batch)
                    self._counts["restarts"] += 1
                    self._in_flight = 0
                    self._cond.notify_all()
                self._stop_process()

    def _next_batch(self) -> tuple[list[tuple[str, float, np.ndarray, float]] | None, list[str]]:
        settings = self.settings
        with self._cond:
            if not self._cond.wait_for(lambda: self._pending or self._closing, 0.5):
                return None, []
            if self._closing:
                return None, []
            deadline = time.monotonic() + settings.batch_wait_s
            while len(self._pending) < settings.max_batch and not self._closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            now = time.monotonic()
            batch: list[tuple[str, float, np.ndarray, float]] = []
            while self._pending and len(batch) < settings.max_batch:
                item = self._pending.popleft()
                if settings.max_age_s is not None and now - item[3] > settings.max_age_s:
                    self._counts["stale"] += 1  # behind: scoring it would only add lag
                    continue
                batch.append(item)
            self._cond.notify_all()  # room for blocked submitters
            if not batch:
                return None, []  # forgets wait for the next batch
            forget, self._forget = self._forget, []
            self._in_flight = len(batch)
            return batch, forget

    def _tick(self, batch: list[tuple[str, float, np.ndarray, float]], forget: list[str]) -> None:
        conn = self._conn
        ids = [item[0] for item in batch]
        ts = np.array([item[1] for item in batch], np.float64)
        crops = np.stack([item[2] for item in batch])
        conn.send(("tick", ids, ts, crops, forget))
        if not conn.poll(self.settings.tick_timeout_s):
            raise TimeoutError(f"no answer in {self.settings.tick_timeout_s:.0f} s")
        _, ids, ts, probs, info = conn.recv()
        now = time.monotonic()
        scores = [
            Scores(person_id, float(t), float(p[0]), float(p[1]), float(p[2]))
            for person_id, t, p in zip(ids, ts, probs, strict=True)
        ]
        with self._cond:
            self._counts["scored"] += len(scores)
            self._latencies.extend(now - item[3] for item in batch)
            self._last_batch, self._last_tick_s = len(batch), float(info["tick_s"])
            self._in_flight = 0
            if self.on_scores is None:
                self._results.extend(scores)
            self._cond.notify_all()
        if self.on_scores is not None:
            try:
                self.on_scores(scores)
            except Exception:  # a consumer's bug must not stop inference for everyone
                logger.exception("on_scores callback failed")
        self._wake_async()

    def _wake_async(self) -> None:
        for loop, event in list(self._waiters):
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(event.set)
