"""The 8-bit encoder the bot runs on CPUs: the shipped model's judgement survives quantization, a
face's reading does not depend on the faces batched with it, and bad input is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.datasets import read_dataset
from engine.inference import InferenceSettings
from engine.model import EmotionModel
from engine.preprocess import preprocess_faces
from engine.quantized import QuantizedEncoder, check_encoder_kind, live_encoder_kind


@pytest.fixture(scope="module")
def shipped() -> tuple[EmotionModel, EmotionModel]:
    return EmotionModel.load(encoder_kind="float"), EmotionModel.load(encoder_kind="int8")


def test_the_live_rule_is_int8_on_a_cpu_and_float_on_a_gpu() -> None:
    assert live_encoder_kind([]) == "int8"
    assert live_encoder_kind(["/device:GPU:0"]) == "float"
    assert live_encoder_kind() in ("int8", "float")  # this machine's devices, whatever they are


def test_unknown_encoder_kinds_are_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"encoder kind in \('float', 'int8'\). Received: 'fp16'"):
        check_encoder_kind("fp16")
    with pytest.raises(ValueError, match="Received: 'int4'"):
        InferenceSettings(encoder_kind="int4")
    with pytest.raises(ValueError, match="Received: 'half'"):
        EmotionModel.load(encoder_kind="half")


def test_shipped_states_survive_quantization_on_real_faces(
    shipped: tuple[EmotionModel, EmotionModel], jaffe_dir: Path
) -> None:
    float_model, int8_model = shipped
    faces = read_dataset(jaffe_dir).faces
    assert len(faces) == 213
    exact = float_model.predict_faces(faces)
    quantized = int8_model.predict_faces(faces)
    agree = float((exact.argmax(axis=1) == quantized.argmax(axis=1)).mean())
    assert agree >= 0.97, f"only {agree:.1%} of JAFFE faces keep their state"
    assert float(np.abs(exact - quantized).max()) < 0.15
    # Quantization really happened: not the float network by another name.
    assert float(np.abs(exact - quantized).max()) > 1e-4


def test_a_faces_embedding_does_not_depend_on_its_batch(
    shipped: tuple[EmotionModel, EmotionModel],
) -> None:
    _, int8_model = shipped
    rng = np.random.default_rng(3)
    face = rng.integers(0, 256, (1, 48, 48), np.uint8)
    alone = int8_model.embed_faces(face)
    # Bright, dark and noisy companions: a per-batch activation scale would move the face's values.
    companions = [np.full((1, 48, 48), 255, np.uint8), np.zeros((1, 48, 48), np.uint8)]
    companions.append(rng.integers(0, 256, (29, 48, 48), np.uint8))
    batched = int8_model.embed_faces(np.concatenate([*companions[:1], face, *companions[1:]]))
    np.testing.assert_array_equal(batched[1], alone[0])


def test_the_encoder_refuses_unprepared_faces(shipped: tuple[EmotionModel, EmotionModel]) -> None:
    encoder = QuantizedEncoder.from_keras(shipped[0].encoder)
    raw = np.zeros((2, 48, 48, 1), np.uint8)
    with pytest.raises(ValueError, match=r"float32 faces of shape \(N, 48, 48, 1\).*uint8"):
        encoder(raw)
    with pytest.raises(ValueError, match=r"shape=\(2, 48, 48\)"):
        encoder(np.zeros((2, 48, 48), np.float32))
    assert encoder(np.zeros((0, 48, 48, 1), np.float32)).shape == (0, encoder.embedding_dim)
    faces = preprocess_faces(np.zeros((3, 48, 48), np.uint8))
    assert encoder(faces).shape == (3, 2048) and encoder(faces[:1]).shape == (1, 2048)
    with pytest.raises(ValueError, match=r"num_threads >= 1\. Received: 0"):
        QuantizedEncoder(b"", num_threads=0)
