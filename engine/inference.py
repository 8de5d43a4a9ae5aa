"""Inference service: the process that owns TensorFlow and scores every person's face windows.

``serve`` is the entry point of that process (started by ``engine.inference_client`` with the
*spawn* context, so TensorFlow never enters the media process). ``InferenceRuntime`` is its pure
synchronous core: one batched CNN call per tick for every pending frame, each frame encoded once,
then only the LSTM head over each person's window of the last T frames. Nothing in this module
imports TensorFlow until a runtime is built.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.preprocess import check_faces
from engine.quantized import check_encoder_kind, live_encoder_kind
from engine.quiet_start import native_stderr_filtered


@dataclass(frozen=True)
class InferenceSettings:
    """Settings of the inference process and of the client that feeds it.

    - ``max_batch=256``: frames per model call; 50 persons at 5 fps need 250/s, so one call a
      second covers them, and the CNN's cost per face is flat from ~50 faces on.
    - ``batch_wait_s=0.1``: after the first pending frame, wait this long for more before a call
      (bounded wait). A call costs ~1 ms on top of ~0.4 ms per face, and the CNN's cost per face
      halves from 1 to 10 faces; 50 persons at 5 fps fill 25 faces in 0.1 s, while 0.1 s is
      invisible next to the seconds over which an engagement state is judged.
    - ``max_pending=2048``: frames waiting on the client side; beyond it the oldest are dropped.
    - ``max_age_s=1.0``: frames that waited longer are dropped unscored when their turn comes:
      when inference falls behind, the live view stays at most about a second late instead of
      drifting. ``None`` never drops by age (offline analysis, which waits instead).
    - ``window_gap_s=1.0``: a person's window restarts after a gap this long (face lost, frames
      dropped), so a window never mixes two moments of a lesson.
    - ``idle_forget_s=60``: windows of persons not seen for a minute are freed.
    - ``num_threads=None``: TensorFlow/BLAS threads; ``None`` takes half the cores (at least 1),
      leaving the rest to video decoding in the media process.
    - ``encoder_kind=None``: ``"float"`` or ``"int8"`` (see ``engine.quantized``); ``None`` takes
      the product's rule, ``int8`` on a CPU and ``float`` on a GPU.
    - ``tick_timeout_s=30``: a model call that has not answered by then is a hung process: it is
      killed and restarted.
    """

    model_path: str | None = None
    max_batch: int = 256
    batch_wait_s: float = 0.1
    max_pending: int = 2048
    max_age_s: float | None = 1.0
    window_gap_s: float = 1.0
    idle_forget_s: float = 60.0
    num_threads: int | None = None
    start_timeout_s: float = 180.0
    tick_timeout_s: float = 30.0
    encoder_kind: str | None = None

    def __post_init__(self) -> None:
        if self.encoder_kind is not None:
            check_encoder_kind(self.encoder_kind)
        if self.max_batch < 1 or self.max_pending < 1:
            raise ValueError(
                "Expected max_batch >= 1 and max_pending >= 1. "
                f"Received: max_batch={self.max_batch}, max_pending={self.max_pending}"
            )
        if self.max_age_s is not None and self.max_age_s <= 0:
            raise ValueError(f"Expected max_age_s > 0 or None. Received: {self.max_age_s}")

    def threads(self) -> int:
        return self.num_threads or max(1, (os.cpu_count() or 2) // 2)


class _Window:
    """One person's last T per-frame vectors in a ring written twice, so that the window in time
    order is always one contiguous slice (no stacking per frame)."""

    __slots__ = ("buffer", "last_t", "last_used", "position")

    def __init__(self, length: int, dim: int) -> None:
        self.buffer = np.empty((2 * length, dim), np.float32)
        self.position = -1  # empty
        self.last_t = float("-inf")
        self.last_used = time.monotonic()

    def push(self, t: float, vector: np.ndarray, gap_s: float) -> None:
        length = len(self.buffer) // 2
        if self.position < 0 or t - self.last_t > gap_s or t < self.last_t:
            # A new window (first frame, a gap, a clock that went back): the first frame fills
            # it, which is the model's reading of a face held still for the whole window.
            self.buffer[:] = vector
            self.position = 0
        else:
            self.position = (self.position + 1) % length
            self.buffer[self.position] = vector
            self.buffer[self.position + length] = vector
        self.last_t = t
        self.last_used = time.monotonic()

    def array(self) -> np.ndarray:
        """(T, dim), oldest first."""
        length = len(self.buffer) // 2
        return self.buffer[self.position + 1 : self.position + 1 + length]


class InferenceRuntime:
    """Scores batches of (person, time, crop); keeps every person's window between calls."""

    def __init__(self, model: Any, settings: InferenceSettings) -> None:
        import tensorflow as tf

        from engine.window_head import WindowHead

        self.model = model
        self.settings = settings
        self.length = int(model.sequence_length)
        head = model.head
        self.window_head = WindowHead.from_keras(head)
        if self.window_head is None:  # a head the numpy path does not reproduce: run Keras
            self._head = tf.function(
                lambda x: head(x, training=False),
                input_signature=[
                    tf.TensorSpec((None, self.length, model.embedding_dim), tf.float32)
                ],
                autograph=False,
            )
        gpus = tf.config.list_logical_devices("GPU")
        self.device = gpus[0].name if gpus else "CPU"
        self._windows: dict[str, _Window] = {}
        self._last_sweep = time.monotonic()
        self.run(["warm-up"], [0.0], np.zeros((1, 48, 48), np.uint8))
        self._windows.clear()

    @property
    def num_persons(self) -> int:
        return len(self._windows)

    def forget(self, person_ids: Sequence[str]) -> None:
        for person_id in person_ids:
            self._windows.pop(person_id, None)

    def run(self, person_ids: Sequence[str], ts: Sequence[float], crops: np.ndarray) -> np.ndarray:
        """uint8 (N, 48, 48) crops of ``person_ids`` at ``ts`` (in time order) → float32 (N, 3).

        Row i scores the window of person i's frames up to and including crop i.
        """
        check_faces(crops, ndim=3, name="crops")
        if not len(person_ids) == len(ts) == len(crops):
            raise ValueError(
                "Expected one person id and one time per crop. Received: "
                f"{len(person_ids)} ids, {len(ts)} times, {len(crops)} crops"
            )
        if len(crops) == 0:
            return np.zeros((0, len(self.model.classes)), np.float32)
        vectors = self._vectors(crops)
        windows = np.empty((len(crops), self.length, vectors.shape[1]), np.float32)
        for row, (person_id, t) in enumerate(zip(person_ids, ts, strict=True)):
            window = self._windows.get(person_id)
            if window is None:
                window = self._windows[person_id] = _Window(self.length, vectors.shape[1])
            window.push(float(t), vectors[row], self.settings.window_gap_s)
            windows[row] = window.array()
        self._forget_idle()
        if self.window_head is not None:
            return self.window_head.predict(windows)
        return np.asarray(self._head(windows), np.float32)

    def _vectors(self, crops: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(crops), self.settings.max_batch):
            x = self.model.preprocess(crops[start : start + self.settings.max_batch])
            embeddings = self.model.encode(x)
            out.append(
                self.window_head.project(embeddings) if self.window_head is not None else embeddings
            )
        return np.concatenate(out)

    def _forget_idle(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < 5.0:
            return
        self._last_sweep = now
        cutoff = now - self.settings.idle_forget_s
        for person_id in [p for p, w in self._windows.items() if w.last_used < cutoff]:
            del self._windows[person_id]


def configure_tensorflow(num_threads: int) -> None:
    """Threads for a CPU, memory growth for GPUs (several processes may share one)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(num_threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)


def serve(conn: Any, settings: InferenceSettings) -> None:
    """Entry point of the inference process: load once, then answer ticks until told to stop.

    Messages in: ``("tick", ids, ts, crops, forget_ids)`` and ``("close",)``. Messages out:
    ``("ready", info)`` once, then ``("scores", ids, ts, probs, info)`` per tick, or
    ``("error", text)`` when the model cannot be loaded.
    """
    try:
        # Import, device probing, load and warm-up without TensorFlow's start-up chatter.
        with native_stderr_filtered():
            configure_tensorflow(settings.threads())
            from engine.model import EmotionModel

            kind = settings.encoder_kind or live_encoder_kind()
            model = EmotionModel.load(settings.model_path, kind, settings.threads())
            runtime = InferenceRuntime(model, settings)
    except Exception as error:  # reported to the client, which raises it in start()
        conn.send(("error", f"{type(error).__name__}: {error}"))
        return
    info = {"device": runtime.device, "encoder": model.encoder_kind, "pid": os.getpid()}
    conn.send(("ready", info))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the client is gone: nothing left to serve
        if message[0] == "close":
            return
        _, person_ids, ts, crops, forget = message
        started = time.perf_counter()
        runtime.forget(forget)
        probs = runtime.run(person_ids, ts, crops)
        info = {"tick_s": time.perf_counter() - started, "num_persons": runtime.num_persons}
        conn.send(("scores", person_ids, ts, probs, info))
