"""The one writer: a thread owns every database write; the live path never waits on it.

``submit(row)`` appends to a bounded in-memory buffer and returns at once. The thread commits in
batches (at most ``max_batch_rows`` rows, and no row waits longer than ``max_delay_s`` before its
batch starts). When the database refuses a batch (locked, read-only, disk full, connection lost)
the rows stay in the buffer and the batch is retried with growing back-off after a fresh
connection. When the buffer is full, new samples and state changes are dropped (meeting,
participant, alert and consent rows are always kept) and the count is logged at ERROR level.
Nothing is lost without a counter and a log line saying so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from storage.apply import BatchOutcome, WriteCache, apply_batch
from storage.rows import BULK_ROWS, ConsentKind, ConsentRecorded, Row

logger = logging.getLogger(__name__)

# Errors that say "not now" rather than "never": the same batch may succeed later.
_RETRYABLE = (
    sa_exc.OperationalError,  # SQLite locked / read-only / disk full; PostgreSQL lock timeout, disk
    sa_exc.InternalError,  # PostgreSQL read-only transaction
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
)

#: Seconds between two repeated warnings while the database keeps refusing, or rows keep dropping.
_REPORT_EVERY_S = 5.0


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters since the writer started. ``submitted == pending + written + dropped + rejected
    + discarded`` at every moment."""

    #: Rows handed to ``submit``.
    submitted: int
    #: Rows in the buffer, not yet committed.
    pending: int
    #: Rows committed.
    written: int
    #: Rows lost: buffer full, or still pending when ``close`` gave up.
    dropped: int
    #: Rows the database can never take as they are (e.g. a sample for a meeting never opened).
    rejected: int
    #: Rows about opted-out participants, discarded on purpose.
    discarded: int
    #: Batches the database refused and that were tried again.
    retries: int
    #: Transactions committed, and the most rows one of them carried.
    batches: int
    largest_batch: int
    #: True while the last attempt failed.
    failing: bool


class Writer:
    """Owns the writes to one database. Give it its own engine (``create_engine_for(url,
    writes=True)``): it reconnects after failures and disposes the engine on ``close``."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch_rows: int = 500,
        max_delay_s: float = 1.0,
        max_pending_rows: int = 100_000,
        retry_delay_s: float = 0.05,
        max_retry_delay_s: float = 2.0,
    ) -> None:
        if max_batch_rows < 1:
            raise ValueError(f"Expected max_batch_rows >= 1. Received: {max_batch_rows!r}")
        if max_pending_rows < max_batch_rows:
            raise ValueError(
                f"Expected max_pending_rows >= max_batch_rows ({max_batch_rows}). "
                f"Received: {max_pending_rows!r}"
            )
        if not max_delay_s > 0:
            raise ValueError(f"Expected max_delay_s > 0 seconds. Received: {max_delay_s!r}")
        self._engine = engine
        self._max_batch_rows = max_batch_rows
        self._max_delay_s = max_delay_s
        self._max_pending_rows = max_pending_rows
        self._retry_delay_s = retry_delay_s
        self._max_retry_delay_s = max_retry_delay_s

        self._cond = threading.Condition()
        self._buffer: deque[tuple[float, Row]] = deque()  # (monotonic submit time, row)
        self._cache = WriteCache()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._close_deadline = float("inf")
        self._flush_waiters = 0
        self._urgent_until = 0  # rows up to this accepted count are written without delay
        self._accepted = 0  # rows that entered the buffer
        self._resolved = 0  # rows that left it, in order

        self._submitted = 0
        self._written = 0
        self._dropped = 0
        self._dropped_unreported = 0
        self._rejected = 0
        self._discarded = 0
        self._retries = 0
        self._batches = 0
        self._largest_batch = 0
        self._failing = False

    # -- the live path ----------------------------------------------------------------------

    def submit(self, row: Row) -> bool:
        """Queues ``row``; never waits on the database. False when the buffer was full and the
        row was dropped (counted, and logged by the writer thread)."""
        with self._cond:
            if self._stopping:
                raise RuntimeError("Expected an open writer. Received: submit() after close()")
            self._submitted += 1
            if len(self._buffer) >= self._max_pending_rows and isinstance(row, BULK_ROWS):
                self._dropped += 1
                self._dropped_unreported += 1
                return False
            was_empty = not self._buffer
            self._buffer.append((time.monotonic(), row))
            self._accepted += 1
            if isinstance(row, ConsentRecorded) and row.kind is ConsentKind.OPT_OUT:
                # An opt-out deletes the student's rows now, not at the next batch.
                self._urgent_until = self._accepted
                self._cond.notify_all()
            elif was_empty or len(self._buffer) == self._max_batch_rows:
                # Wake the thread only when it has something new to decide.
                self._cond.notify_all()
            return True

    def submit_many(self, rows: Iterable[Row]) -> int:
        """Queues every row; returns how many were accepted."""
        return sum(self.submit(row) for row in rows)

    def stats(self) -> WriterStats:
        with self._cond:
            return WriterStats(
                submitted=self._submitted,
                pending=len(self._buffer),
                written=self._written,
                dropped=self._dropped,
                rejected=self._rejected,
                discarded=self._discarded,
                retries=self._retries,
                batches=self._batches,
                largest_batch=self._largest_batch,
                failing=self._failing,
            )

    # -- control ----------------------------------------------------------------------------

    def start(self) -> Writer:
        """Starts the thread; ``close()`` stops it."""
        if self._thread is not None:
            raise RuntimeError(
                "Expected a writer that was not started yet. Received: start() twice"
            )
        self._thread = threading.Thread(target=self._run, name="classpulse-storage-writer")
        self._thread.daemon = True
        self._thread.start()
        return self

    def flush(self, timeout_s: float | None = None) -> bool:
        """Commits everything submitted so far now; True when it all left the buffer in time."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            target = self._accepted
            self._flush_waiters += 1
            self._cond.notify_all()
            try:
                while self._resolved < target:
                    if self._thread is None or not self._thread.is_alive():
                        return False
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining if remaining is not None else 1.0)
                return True
            finally:
                self._flush_waiters -= 1

    def close(self, timeout_s: float = 10.0) -> WriterStats:
        """Writes what is pending (for at most ``timeout_s`` while the database refuses), stops
        the thread and disposes the engine. Rows still pending then are dropped, loudly."""
        with self._cond:
            if not self._stopping:
                self._stopping = True
                self._close_deadline = time.monotonic() + timeout_s
            self._cond.notify_all()
        if self._thread is None:
            # Never started: still write what was submitted (the thread sees it is closing).
            self.start()
        assert self._thread is not None
        self._thread.join(timeout_s + 30.0)
        if self._thread.is_alive():
            logger.error("storage writer: thread still busy after close(); leaving it")
        self._engine.dispose()
        stats = self.stats()
        if stats.dropped or stats.rejected:
            logger.error(
                "storage writer closed: %d rows written, %d DROPPED, %d rejected, %d discarded",
                stats.written,
                stats.dropped,
                stats.rejected,
                stats.discarded,
            )
        return stats

    def __enter__(self) -> Writer:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the thread -------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self._retry_delay_s
        last_report = 0.0
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                done = self._write(batch)
                now = time.monotonic()
                if done:
                    delay = self._retry_delay_s
                if self._dropped_unreported and now - last_report >= _REPORT_EVERY_S:
                    self._report_drops()
                    last_report = now
                if done:
                    continue
                with self._cond:
                    self._retries += 1
                    if self._stopping and now >= self._close_deadline:
                        self._give_up_pending_locked()
                        return
                    wait = delay
                    if self._stopping:
                        wait = min(wait, max(0.0, self._close_deadline - now))
                    self._cond.wait(wait)  # close() wakes us early
                delay = min(delay * 2, self._max_retry_delay_s)
        except BaseException:
            logger.critical("storage writer thread crashed; pending rows are lost", exc_info=True)
            self._give_up_pending()
            raise
        finally:
            if self._dropped_unreported:
                self._report_drops()

    def _next_batch(self) -> list[Row] | None:
        """Waits for a batch worth writing: full, old enough, flushed, or closing."""
        with self._cond:
            while True:
                if self._buffer:
                    now = time.monotonic()
                    oldest = self._buffer[0][0]
                    if (
                        self._stopping
                        or self._flush_waiters
                        or self._resolved < self._urgent_until
                        or len(self._buffer) >= self._max_batch_rows
                        or now - oldest >= self._max_delay_s
                    ):
                        return [row for _, row in islice(self._buffer, self._max_batch_rows)]
                    self._cond.wait(self._max_delay_s - (now - oldest))
                elif self._stopping:
                    return None
                else:
                    self._cond.wait()

    def _write(self, batch: list[Row]) -> int:
        """Writes the head of the buffer; returns how many rows left it (0: try again later)."""
        try:
            outcome = self._commit(batch)
        except _RETRYABLE as error:
            self._refused(batch, error)
            return 0
        except Exception as error:
            # Some row the database will never take (a constraint, a value out of range): find it
            # by writing the rows one at a time.
            self._cache.clear()
            logger.warning("storage writer: batch failed (%s); retrying row by row", error)
            return self._write_one_by_one(batch)
        self._resolve(len(batch), outcome)
        return len(batch)

    def _write_one_by_one(self, batch: list[Row]) -> int:
        for index, row in enumerate(batch):
            try:
                outcome = self._commit([row])
            except _RETRYABLE as error:
                self._refused(batch[index:], error)
                return index
            except Exception as error:
                self._cache.clear()
                outcome = BatchOutcome(rejected=[(row, f"{type(error).__name__}: {error}")])
            self._resolve(1, outcome)
        return len(batch)

    def _commit(self, batch: list[Row]) -> BatchOutcome:
        try:
            with Session(self._engine) as session, session.begin():
                return apply_batch(session, batch, self._cache)
        except BaseException:
            # Ids made inside the rolled-back transaction are gone.
            self._cache.clear()
            raise

    def _refused(self, batch: list[Row], error: Exception) -> None:
        first = not self._failing
        with self._cond:
            self._failing = True
            pending = len(self._buffer)
        # A read-only or broken connection stays that way: reconnect for the next attempt.
        self._engine.dispose()
        if first or self._retries % 20 == 0:
            logger.warning(
                "storage writer: the database refused a batch of %d rows (%s); keeping %d rows "
                "pending and retrying",
                len(batch),
                _short(error),
                pending,
            )

    def _resolve(self, count: int, outcome: BatchOutcome) -> None:
        for row, reason in outcome.rejected:
            logger.error("storage writer: REJECTED a %s row: %s", type(row).__name__, reason)
        with self._cond:
            for _ in range(count):
                self._buffer.popleft()
            self._resolved += count
            self._written += outcome.written
            self._rejected += len(outcome.rejected)
            self._discarded += outcome.discarded
            self._batches += 1
            self._largest_batch = max(self._largest_batch, count)
            recovered, self._failing = self._failing, False
            self._cond.notify_all()
        if recovered:
            logger.warning("storage writer: the database accepts writes again")

    def _report_drops(self) -> None:
        with self._cond:
            fresh, total = self._dropped_unreported, self._dropped
            self._dropped_unreported = 0
            pending = len(self._buffer)
        logger.error(
            "storage writer: buffer full (%d rows pending, bound %d): DROPPED %d rows since the "
            "last report, %d in total",
            pending,
            self._max_pending_rows,
            fresh,
            total,
        )

    def _give_up_pending(self) -> None:
        with self._cond:
            self._give_up_pending_locked()

    def _give_up_pending_locked(self) -> None:
        lost = len(self._buffer)
        if not lost:
            return
        self._buffer.clear()
        self._resolved += lost
        self._dropped += lost
        self._cond.notify_all()
        logger.error(
            "storage writer: closing with the database still refusing: DROPPED %d rows", lost
        )


def _short(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    return f"{type(original).__name__}: {str(original).splitlines()[0] if str(original) else ''}"
