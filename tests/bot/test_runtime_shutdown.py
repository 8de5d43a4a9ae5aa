"""The runtime's shutdown runs every step even when one fails: a scoring hub that times out must
not leave the storage writer (and its thread, which keeps the process alive) open."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.runtime import BotRuntime
from storage import Storage


class _HubThatTimesOut:
    def __init__(self) -> None:
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True
        raise TimeoutError("inference process did not stop in 5 s")


async def test_writer_and_threads_close_after_a_failed_step(tmp_path: Path) -> None:
    storage = Storage.open(f"sqlite:///{tmp_path / 'shutdown.db'}")
    runtime = BotRuntime(storage, num_media_workers=1)
    hub = _HubThatTimesOut()
    runtime.scoring = hub  # type: ignore[assignment]
    runtime.writer = storage.writer()
    runtime._executor = ThreadPoolExecutor(1)
    writer_thread = runtime.writer._thread
    assert writer_thread is not None and writer_thread.is_alive()
    with pytest.raises(TimeoutError, match="did not stop"):
        await runtime.aclose()
    assert hub.closed
    assert not writer_thread.is_alive()
    assert runtime._executor._shutdown
    storage.close()
