"""The paper's CNN-LSTM (builders, Keras 3 functional API) and ``EmotionModel``, its stable API.

Per frame: 3 × (Conv 3×3 ReLU → MaxPool 2×2) with 32/64/128 filters → flatten (4·4·128 = 2048).
Over frames: LSTM(128) → Dropout(0.5) → LSTM(128) → Dropout(0.5) → Dense(3) softmax.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) is noise in a CLI; keep warnings.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from engine.preprocess import check_faces, preprocess_faces
from engine.quantized import QuantizedEncoder, check_encoder_kind
from engine.types import CLASSES, FACE_SIZE

#: Frames per sequence the head was trained on: 2 s at the default analysis rate of 5 fps.
SEQUENCE_LENGTH = 10
#: Faces per model call; bounds memory on 4K-class batches and keeps calls near their best speed.
MAX_BATCH = 256
WEIGHTS_FILE = "emotion_cnn_lstm.keras"


def build_frame_encoder(batch_norm: bool = False) -> keras.Model:
    """(48, 48, 1) → (2048,): the per-frame CNN. 'valid' convolutions keep the flatten at 2048.

    ``batch_norm`` puts batch normalisation between each convolution and its ReLU (1,792
    parameters more): it trains in fewer epochs and is folded into plain arithmetic at inference.
    """
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="face")
    x = inputs
    for index, filters in enumerate((32, 64, 128), start=1):
        if batch_norm:
            x = layers.Conv2D(filters, 3, use_bias=False, name=f"conv{index}")(x)
            x = layers.BatchNormalization(name=f"norm{index}")(x)
            x = layers.ReLU(name=f"relu{index}")(x)
        else:
            x = layers.Conv2D(filters, 3, activation="relu", name=f"conv{index}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{index}")(x)
    outputs = layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, outputs, name="frame_encoder")


@keras.saving.register_keras_serializable(package="classpulse")
class HorizontalFlip(layers.Layer):
    """Mirrors (N, H, W, C) images left to right; deterministic, unlike ``RandomFlip``."""

    def call(self, inputs: Any) -> Any:
        return keras.ops.flip(inputs, axis=2)


def multi_view(encoder: keras.Model, views: int = 2) -> keras.Model:
    """The same encoder (shared weights) on several views of a face, embeddings averaged.

    Test-time averaging inside the per-frame CNN, so every caller (the live inference process,
    evaluation, the LSTM head) gets it with no change, at ``views`` times the convolution cost.
    ``views=2``: the face and its mirror image; ``views=4``: also a 2-pixel tighter crop of it
    (what a slightly larger detector box would give) and that crop's mirror image. Averaging
    over small changes of framing is what keeps the state still while the tracker's box moves.
    """
    if views not in (2, 4):
        raise ValueError(f"Expected views in (2, 4). Received: {views}")
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="face")
    faces = [inputs]
    if views == 4:
        tighter = layers.Cropping2D(2, name="tighter_crop")(inputs)
        faces.append(layers.Resizing(FACE_SIZE, FACE_SIZE, name="tighter_resize")(tighter))
    embeddings = []
    for index, face in enumerate(faces):
        embeddings.append(encoder(face))
        embeddings.append(encoder(HorizontalFlip(name=f"mirror{index}")(face)))
    outputs = layers.Average(name="view_average")(embeddings)
    return keras.Model(inputs, outputs, name=f"frame_encoder_{views}_views")


def build_sequence_head(
    embedding_dim: int, num_classes: int = len(CLASSES), input_dropout: float = 0.0
) -> keras.Model:
    """(T, embedding_dim) → (num_classes,): two stacked LSTM(128), dropout 0.5 after each.

    ``input_dropout`` > 0 drops that share of each frame's embedding while training (no
    parameters; the identity at inference): the head then cannot lean on a few units the frozen
    CNN learned for its training faces.
    """
    inputs = keras.Input((None, embedding_dim), name="embeddings")
    x = inputs
    if input_dropout:
        x = layers.Dropout(input_dropout, name="input_dropout")(x)
    x = layers.LSTM(128, return_sequences=True, name="lstm1")(x)
    x = layers.Dropout(0.5, name="dropout1")(x)
    x = layers.LSTM(128, name="lstm2")(x)
    x = layers.Dropout(0.5, name="dropout2")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="states")(x)
    return keras.Model(inputs, outputs, name="sequence_head")


def build_cnn_lstm(
    encoder: keras.Model | None = None, head: keras.Model | None = None
) -> keras.Model:
    """(T, 48, 48, 1) → (3,): the encoder applied to every frame, then the LSTM head."""
    encoder = encoder or build_frame_encoder()
    head = head or build_sequence_head(int(encoder.output.shape[-1]))
    inputs = keras.Input((None, FACE_SIZE, FACE_SIZE, 1), name="faces")
    x = layers.TimeDistributed(encoder, name="per_frame_cnn")(inputs)
    outputs = head(x)
    return keras.Model(inputs, outputs, name="cnn_lstm")


def default_weights_path() -> Path:
    return Path(str(resources.files("engine") / "weights" / WEIGHTS_FILE))


def _chunks(num_rows: int, size: int = MAX_BATCH) -> Iterator[slice]:
    for start in range(0, num_rows, size):
        yield slice(start, min(start + size, num_rows))


class EmotionModel:
    """Loaded once per process; tells ``interested`` / ``bored`` / ``confused`` from gray faces.

    The live path calls the Keras model directly (``model(x, training=False)``), batched, which is
    several times cheaper per call than ``model.predict``. ``embed_faces`` and
    ``predict_embeddings`` let a runtime encode every frame once and rerun only the LSTM.
    """

    classes: tuple[str, str, str] = CLASSES

    def __init__(
        self,
        network: keras.Model,
        sequence_length: int = SEQUENCE_LENGTH,
        encoder_kind: str = "float",
        num_threads: int | None = None,
        *,
        equalize: bool = False,
    ) -> None:
        self.network = network
        #: CLAHE before standardising (``engine.preprocess``): what the model was trained with.
        self.equalize = equalize
        self.encoder: keras.Model = network.get_layer("per_frame_cnn").layer
        self.head: keras.Model = network.get_layer("sequence_head")
        self.sequence_length = sequence_length
        self.embedding_dim = int(self.encoder.output.shape[-1])
        # Graph functions: an eager LSTM call runs op by op (~40 ms even for one face); traced
        # once with a flexible batch dimension it costs a few ms.
        self.encoder_kind = check_encoder_kind(encoder_kind)
        if encoder_kind == "int8":
            self._encode: Callable[[np.ndarray], Any] = QuantizedEncoder.from_keras(
                self.encoder, num_threads or os.cpu_count() or 1
            )
        else:
            self._encode = tf.function(
                lambda x: self.encoder(x, training=False),
                input_signature=[tf.TensorSpec((None, FACE_SIZE, FACE_SIZE, 1), tf.float32)],
                autograph=False,
            )
        self._classify = tf.function(lambda x: self.head(x, training=False), reduce_retracing=True)

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        encoder_kind: str = "float",
        num_threads: int | None = None,
    ) -> EmotionModel:
        """Load the shipped weights, or a ``.keras`` file written by ``save`` / ``classpulse train``.

        ``encoder_kind``: ``"float"`` reads faces with the Keras encoder; ``"int8"`` with its 8-bit
        copy (``engine.quantized``), which the bot runs on CPUs — pass
        ``engine.quantized.live_encoder_kind()`` to read faces as the bot does.
        """
        check_encoder_kind(encoder_kind)
        path = Path(path) if path is not None else default_weights_path()
        if not path.is_file():
            raise FileNotFoundError(f"Expected a .keras model file. Received: {path} (not found)")
        network = keras.saving.load_model(path, compile=False)
        metadata = _read_metadata(path)
        length = int(metadata.get("sequence_length", SEQUENCE_LENGTH))
        equalize = metadata.get("equalize", False)
        if not isinstance(equalize, bool):
            raise ValueError(
                f"Expected `equalize` true or false in {path.with_suffix('.json')}. "
                f"Received: {equalize!r}"
            )
        return cls(network, length, encoder_kind, num_threads, equalize=equalize)

    def save(self, path: str | Path, **metadata: Any) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.network.save(path)
        info = {
            "classes": list(self.classes),
            "sequence_length": self.sequence_length,
            "equalize": self.equalize,
            **metadata,
        }
        path.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")

    @property
    def num_parameters(self) -> int:
        return int(self.network.count_params())

    def preprocess(self, faces: np.ndarray) -> np.ndarray:
        """uint8 (..., 48, 48) faces → this model's input (``preprocess_faces`` as it was trained)."""
        return preprocess_faces(faces, equalize=self.equalize)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """float32 (N, 48, 48, 1) preprocessed faces → (N, embedding_dim), one encoder call."""
        return np.asarray(self._encode(x), np.float32)

    def embed_faces(self, faces: np.ndarray) -> np.ndarray:
        """uint8 (N, 48, 48) → float32 (N, embedding_dim) per-frame CNN embeddings."""
        check_faces(faces, ndim=3)
        out = np.empty((len(faces), self.embedding_dim), np.float32)
        for part in _chunks(len(faces)):
            out[part] = self.encode(self.preprocess(faces[part]))
        return out

    def predict_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """float32 (N, T, embedding_dim) → float32 (N, 3): the LSTM head over cached embeddings."""
        if embeddings.ndim != 3 or embeddings.shape[-1] != self.embedding_dim:
            raise ValueError(
                f"Expected embeddings of shape (N, T, {self.embedding_dim}). "
                f"Received: shape={embeddings.shape}"
            )
        out = np.empty((len(embeddings), len(self.classes)), np.float32)
        x = embeddings.astype(np.float32, copy=False)
        for part in _chunks(len(embeddings)):
            out[part] = np.asarray(self._classify(x[part]))
        return out

    def predict_sequences(self, sequences: np.ndarray) -> np.ndarray:
        """uint8 (N, T, 48, 48) → float32 (N, 3); each row sums to 1."""
        check_faces(sequences, ndim=4, name="sequences")
        num_sequences, length = sequences.shape[:2]
        if length == 0:
            raise ValueError("Expected at least one frame per sequence. Received: T=0")
        flat = self.embed_faces(np.ascontiguousarray(sequences.reshape(-1, FACE_SIZE, FACE_SIZE)))
        return self.predict_embeddings(flat.reshape(num_sequences, length, self.embedding_dim))

    def predict_faces(self, faces: np.ndarray) -> np.ndarray:
        """uint8 (N, 48, 48) → float32 (N, 3); a still face is read as a face held for T frames."""
        check_faces(faces, ndim=3)
        embeddings = self.embed_faces(faces)
        held = np.repeat(embeddings[:, np.newaxis, :], self.sequence_length, axis=1)
        return self.predict_embeddings(held)


def _read_metadata(path: Path) -> dict[str, Any]:
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        return {}
    data = json.loads(sidecar.read_text())
    return data if isinstance(data, dict) else {}
