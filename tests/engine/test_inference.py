"""The inference process and its client: batching, windows, back-pressure, restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from engine.inference import InferenceSettings
from engine.inference_client import InferenceClient, InferenceError
from tests.engine.conftest import run_python


def crops(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 48, 48), dtype=np.uint8)


def test_client_side_modules_never_import_tensorflow() -> None:
    out = run_python(
        "import sys\n"
        "import engine, engine.faces, engine.tracking, engine.states, engine.types\n"
        "import engine.inference, engine.inference_client, engine.analyze, engine.window_head\n"
        "import engine.frame_path, engine.timeline\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "print(heavy)\n"
    )
    assert out.strip() == "[]"


@pytest.mark.parametrize("head", ["numpy", "keras"])
def test_runtime_scores_each_frame_over_its_persons_window(
    random_model_path: Path, head: str
) -> None:
    """Per-frame scores equal the full model on the same window (padded by holding the oldest
    frame), persons do not mix, and a gap restarts the window; for both head implementations."""
    out = run_python(
        "import sys, numpy as np\n"
        "import engine.window_head as wh\n"
        "from engine.model import EmotionModel\n"
        "from engine.inference import InferenceRuntime, InferenceSettings\n"
        "if sys.argv[2] == 'keras':\n"
        "    wh.WindowHead.from_keras = classmethod(lambda cls, head: None)\n"
        "model = EmotionModel.load(sys.argv[1])\n"
        "runtime = InferenceRuntime(model, InferenceSettings(max_batch=7, window_gap_s=1.0))\n"
        "assert (runtime.window_head is None) == (sys.argv[2] == 'keras')\n"
        "rng = np.random.default_rng(1)\n"
        "frames = {p: rng.integers(0, 256, (14, 48, 48), dtype=np.uint8) for p in 'ab'}\n"
        "times = [0.2 * i for i in range(10)] + [5.0, 5.2, 5.4, 5.6]  # a gap before 5.0\n"
        "ids = [p for i in range(14) for p in 'ab']\n"
        "ts = [times[i] for i in range(14) for p in 'ab']\n"
        "batch = np.stack([frames[p][i] for i in range(14) for p in 'ab'])\n"
        "got = np.concatenate([runtime.run(ids[k:k+9], ts[k:k+9], batch[k:k+9])\n"
        "                      for k in range(0, 28, 9)])\n"
        "worst = 0.0\n"
        "for row, (p, i) in enumerate((p, i) for i in range(14) for p in 'ab'):\n"
        "    start = 10 if i >= 10 else max(0, i - 9)\n"
        "    window = frames[p][start:i + 1]\n"
        "    window = np.concatenate([window[:1].repeat(10 - len(window), 0), window])\n"
        "    want = model.predict_sequences(window[None])[0]\n"
        "    worst = max(worst, float(np.abs(got[row] - want).max()))\n"
        "print(worst, got.shape, np.abs(got.sum(1) - 1).max())\n",
        str(random_model_path),
        head,
    )
    worst, *_, total_error = out.split()
    assert float(worst) < 1e-4
    assert float(total_error) < 1e-5


def test_client_scores_every_frame_once(offline_client: InferenceClient) -> None:
    faces = crops(60)
    for i in range(20):
        for p, person in enumerate(("a/1", "b/1", "c/1")):
            offline_client.submit(person, 0.2 * i, faces[3 * i + p])
    assert offline_client.flush(60)
    scores = offline_client.get_scores()
    assert len(scores) == 60
    for person in ("a/1", "b/1", "c/1"):
        ts = [s.t for s in scores if s.person_id == person]
        assert ts == pytest.approx([0.2 * i for i in range(20)])
    assert all(abs(sum(s.as_tuple()) - 1) < 1e-4 for s in scores)
    stats = offline_client.stats()
    assert stats.scored >= 60 and stats.dropped == 0 and stats.pending == 0
    assert stats.device in ("CPU (int8 encoder)", "/device:GPU:0 (float encoder)")
    assert 0 < stats.latency_p50_s <= stats.latency_p95_s < 30


async def test_async_results(offline_client: InferenceClient) -> None:
    offline_client.get_scores()
    for i, face in enumerate(crops(5, seed=3)):
        offline_client.submit("async/1", 0.2 * i, face)
    received = []
    async with asyncio.timeout(60):
        async for batch in offline_client.results():
            received += batch
            if len(received) >= 5:
                break
    assert [s.person_id for s in received] == ["async/1"] * 5


def test_submit_checks_its_crop(offline_client: InferenceClient) -> None:
    with pytest.raises(ValueError, match=r"shape \(48, 48\). Received: shape=\(48, 47\)"):
        offline_client.submit("x/1", 0.0, np.zeros((48, 47), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        offline_client.submit("x/1", 0.0, np.zeros((48, 48), np.float32))


def test_back_pressure_drops_the_oldest_and_counts_them(random_model_path: Path) -> None:
    settings = InferenceSettings(model_path=str(random_model_path), max_pending=16, max_batch=8)
    with InferenceClient(settings) as client:
        faces = crops(400)
        for i, face in enumerate(faces):  # far faster than any model call
            client.submit(f"p{i % 40}/1", i * 0.005, face)
        assert client.flush(60)
        stats = client.stats()
        scores = client.get_scores()
    assert stats.submitted == 400
    assert stats.dropped_overflow > 0
    assert stats.scored + stats.dropped == 400
    assert len(scores) == stats.scored
    assert max(s.t for s in scores) == pytest.approx(399 * 0.005)  # the newest frame was kept


def test_killed_process_is_restarted_and_stale_frames_are_dropped(random_model_path: Path) -> None:
    settings = InferenceSettings(model_path=str(random_model_path), max_age_s=1.0)
    with InferenceClient(settings) as client:
        client.submit("k/1", 0.0, crops(1)[0])
        assert client.flush(30)
        first_pid = client.pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        for i, face in enumerate(crops(10, seed=1)):  # queued while the process is dead
            client.submit("k/1", 1.0 + 0.2 * i, face)
        deadline = time.monotonic() + 120
        while (client.pid in (None, first_pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        client.get_scores()
        for i, face in enumerate(crops(10, seed=2)):
            client.submit("k/1", 10.0 + 0.2 * i, face)
        assert client.flush(60)
        after = client.get_scores()
        stats = client.stats()
    assert client.pid is None  # closed
    assert stats.restarts == 1
    # Frames submitted while it restarted (seconds) were too old to be worth scoring.
    assert stats.dropped_stale + stats.dropped_restart >= 10
    assert [s.t for s in after][-10:] == pytest.approx([10.0 + 0.2 * i for i in range(10)])


def test_unloadable_model_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.keras"
    client = InferenceClient(InferenceSettings(model_path=str(missing)))
    with pytest.raises(
        InferenceError, match=r"Expected a \.keras model file\. Received: .*missing"
    ):
        client.start()
    client.close()
