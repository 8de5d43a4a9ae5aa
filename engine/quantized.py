"""The per-frame CNN with 8-bit weights, for CPUs: the same network, ~3× cheaper per face.

Converting the Keras encoder with TensorFlow Lite's dynamic-range quantization stores each
convolution's weights as int8 (one scale per output channel) and quantizes each face's activations
on the fly; LiteRT's interpreter (``ai-edge-litert``, which also runs the face stage's networks)
then runs the 8-bit convolutions with the CPU's integer dot-product units. The
float model costs ~1.1 ms per face on one core of the 2-core test machine (four views), this copy
~0.3 ms. Every face is quantized with its own scale, so a face's embedding does not depend on the
other faces in its batch (a test checks it), and live scores equal offline evaluation's.

Which encoder reads faces: ``"float"`` (the Keras model: training, GPUs) or ``"int8"`` (this module).
``live_encoder_kind`` is the product's rule: ``int8`` unless TensorFlow sees a GPU. The held-out
evaluation and the report use the same rule by default, so their figures describe what the bot runs.
The conversion takes ~1 s at load; nothing is written but TensorFlow's own temporary export.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from typing import Any

import numpy as np

from engine.litert import interpreter

ENCODER_KINDS = ("float", "int8")
#: Faces per 8-bit call: the kernels' cheapest batch on the test machine (see ``__init__``).
CHUNK = 8


def check_encoder_kind(kind: str) -> str:
    if kind not in ENCODER_KINDS:
        raise ValueError(f"Expected an encoder kind in {ENCODER_KINDS}. Received: {kind!r}")
    return kind


#: What evaluation CLIs accept: ``live`` (the product's rule, the default) or a kind.
ENCODER_CHOICES = ("live", *ENCODER_KINDS)


def add_encoder_argument(parser: argparse.ArgumentParser) -> None:
    """``--encoder``: how an evaluation reads faces; by default as the bot reads them here."""
    parser.add_argument(
        "--encoder",
        choices=ENCODER_CHOICES,
        default="live",
        help="read faces as the bot does on this machine (live: int8 on a CPU, float on a GPU), "
        "or with the float or int8 encoder",
    )


def encoder_kind_for(choice: str) -> str:
    """``--encoder live|float|int8`` → the kind to load; ``live`` is ``live_encoder_kind()``."""
    if choice == "live":
        return live_encoder_kind()
    return check_encoder_kind(choice)


def live_encoder_kind(gpu_names: list[str] | None = None) -> str:
    """``int8`` on a CPU, ``float`` when TensorFlow sees a GPU (8-bit kernels here are CPU ones)."""
    if gpu_names is None:
        import tensorflow as tf

        gpu_names = [device.name for device in tf.config.list_logical_devices("GPU")]
    return "float" if gpu_names else "int8"


class QuantizedEncoder:
    """float32 (N, 48, 48, 1) preprocessed faces → float32 (N, D) embeddings, int8 weights."""

    def __init__(self, flatbuffer: bytes, num_threads: int = 1) -> None:
        if num_threads < 1:
            raise ValueError(f"Expected num_threads >= 1. Received: {num_threads}")
        self._flatbuffer = flatbuffer
        self._num_threads = num_threads
        # One planned interpreter per chunk size (1..CHUNK), made when first needed: re-planning
        # one interpreter for every tick's batch size costs ~0.8 ms a tick, and the 8-bit kernels
        # are cheapest per face at 4–8 faces a call (0.25 ms against 0.37 ms at 64).
        self._interpreters: dict[int, tuple[Any, int, int]] = {}  # batch → (it, input, output)
        probe = self._interpreter(1)[0]
        self.input_shape = tuple(int(n) for n in probe.get_input_details()[0]["shape"][1:])
        self.embedding_dim = int(probe.get_output_details()[0]["shape"][-1])

    @classmethod
    def from_keras(cls, encoder: Any, num_threads: int = 1) -> QuantizedEncoder:
        """Quantize a Keras encoder's weights to int8 (per output channel) and load the result."""
        import tensorflow as tf

        converter = tf.lite.TFLiteConverter.from_keras_model(encoder)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        with contextlib.redirect_stdout(io.StringIO()):  # Keras prints its export's signature
            flatbuffer = converter.convert()
        return cls(flatbuffer, num_threads)

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        faces = np.asarray(faces)
        if faces.dtype != np.float32 or faces.shape[1:] != self.input_shape:
            raise ValueError(
                f"Expected float32 faces of shape (N, {', '.join(map(str, self.input_shape))}). "
                f"Received: dtype={faces.dtype}, shape={faces.shape}"
            )
        out = np.empty((len(faces), self.embedding_dim), np.float32)
        for start in range(0, len(faces), CHUNK):
            part = np.ascontiguousarray(faces[start : start + CHUNK])
            interpreter, input_index, output_index = self._interpreter(len(part))
            interpreter.set_tensor(input_index, part)
            interpreter.invoke()
            out[start : start + len(part)] = interpreter.get_tensor(output_index)
        return out

    def _interpreter(self, batch: int) -> tuple[Any, int, int]:
        planned = self._interpreters.get(batch)
        if planned is None:
            made = interpreter(model_content=self._flatbuffer, num_threads=self._num_threads)
            face = made.get_input_details()[0]
            made.resize_tensor_input(face["index"], [batch, *face["shape"][1:]])
            made.allocate_tensors()
            output = made.get_output_details()[0]["index"]
            planned = self._interpreters[batch] = (made, face["index"], output)
        return planned
