"""The paper's architecture, the EmotionModel API and its input checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import EmotionModel
from engine.model import build_cnn_lstm, default_weights_path
from engine.preprocess import crop_face, preprocess_faces
from engine.types import Box


@pytest.fixture(scope="module")
def random_model() -> EmotionModel:
    return EmotionModel(build_cnn_lstm())


def test_architecture_follows_the_paper(random_model: EmotionModel) -> None:
    network = random_model.network
    assert random_model.num_parameters == 1_339_267
    assert 800_000 <= random_model.num_parameters <= 1_600_000
    encoder = random_model.encoder
    convs = [layer for layer in encoder.layers if layer.__class__.__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [32, 64, 128]
    assert all(c.kernel_size == (3, 3) and c.activation.__name__ == "relu" for c in convs)
    pools = [layer for layer in encoder.layers if layer.__class__.__name__ == "MaxPooling2D"]
    assert len(pools) == 3 and all(p.pool_size == (2, 2) for p in pools)
    head = random_model.head
    lstms = [layer for layer in head.layers if layer.__class__.__name__ == "LSTM"]
    dropouts = [layer for layer in head.layers if layer.__class__.__name__ == "Dropout"]
    assert [lstm.units for lstm in lstms] == [128, 128] and [d.rate for d in dropouts] == [0.5, 0.5]
    assert network.output.shape[-1] == 3
    assert random_model.classes == ("interested", "bored", "confused")


def test_predictions_are_distributions(random_model: EmotionModel) -> None:
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (5, 48, 48), dtype=np.uint8)
    probabilities = random_model.predict_faces(faces)
    assert probabilities.shape == (5, 3) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    sequences = rng.integers(0, 256, (2, 7, 48, 48), dtype=np.uint8)
    assert random_model.predict_sequences(sequences).shape == (2, 3)
    assert random_model.predict_faces(np.zeros((0, 48, 48), np.uint8)).shape == (0, 3)


def test_cached_embeddings_give_the_same_answer(random_model: EmotionModel) -> None:
    rng = np.random.default_rng(1)
    sequences = rng.integers(0, 256, (3, 4, 48, 48), dtype=np.uint8)
    direct = random_model.predict_sequences(sequences)
    embeddings = random_model.embed_faces(sequences.reshape(-1, 48, 48)).reshape(3, 4, -1)
    np.testing.assert_allclose(random_model.predict_embeddings(embeddings), direct, atol=1e-5)
    full = np.asarray(random_model.network(preprocess_faces(sequences), training=False))
    np.testing.assert_allclose(full, direct, atol=1e-5)


@pytest.mark.parametrize(
    ("faces", "message"),
    [
        (np.zeros((2, 48, 48), np.float32), "dtype uint8.*Received: dtype=float32"),
        (np.zeros((2, 64, 64), np.uint8), r"shape \(N, 48, 48\).*Received: shape=\(2, 64, 64\)"),
        (np.zeros((48, 48), np.uint8), r"Received: shape=\(48, 48\)"),
        ([[0]], "numpy array.*Received: list"),
    ],
)
def test_bad_faces_raise_clear_errors(
    random_model: EmotionModel, faces: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        random_model.predict_faces(faces)  # type: ignore[arg-type]


def test_bad_sequences_raise_clear_errors(random_model: EmotionModel) -> None:
    with pytest.raises(ValueError, match=r"\(N, T, 48, 48\).*Received: shape=\(2, 48, 48\)"):
        random_model.predict_sequences(np.zeros((2, 48, 48), np.uint8))


def test_save_and_load_round_trip(random_model: EmotionModel, tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    random_model.save(path, note="test")
    loaded = EmotionModel.load(path)
    faces = np.random.default_rng(2).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    np.testing.assert_allclose(
        loaded.predict_faces(faces), random_model.predict_faces(faces), atol=1e-6
    )
    with pytest.raises(FileNotFoundError, match=r"Received: .*missing.keras"):
        EmotionModel.load(tmp_path / "missing.keras")


def test_preprocessing_standardises_each_face() -> None:
    dark = np.full((1, 48, 48), 10, np.uint8)
    dark[0, :24] = 30
    bright = dark * 4
    a, b = preprocess_faces(dark), preprocess_faces(bright)
    assert a.shape == (1, 48, 48, 1) and a.dtype == np.float32
    np.testing.assert_allclose(a.mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(b.std(), 1.0, atol=1e-4)  # contrast is normalised away
    assert np.abs(preprocess_faces(np.zeros((1, 48, 48), np.uint8))).max() == 0  # black stays 0


def test_equalize_brings_out_the_features_of_a_face_half_in_shadow() -> None:
    """CLAHE (the ``equalize`` lever): standardising the whole face leaves a shadowed half flat;
    equalising first gives both halves' features about the same contrast."""
    rng = np.random.default_rng(4)
    texture = rng.integers(60, 200, (1, 48, 48)).astype(np.float32)
    face = texture.copy()
    face[0, :, :24] = 10 + 0.15 * texture[0, :, :24]  # the left half in shadow
    face_u8 = face.astype(np.uint8)

    def halves_contrast(x: np.ndarray) -> float:
        return float(x[0, :, :24].std() / x[0, :, 24:].std())

    plain = preprocess_faces(face_u8)[..., 0]
    equalized = preprocess_faces(face_u8, equalize=True)[..., 0]
    assert halves_contrast(plain) < 0.25
    assert halves_contrast(equalized) > 0.6
    assert equalized.shape == (1, 48, 48) and equalized.dtype == np.float32
    np.testing.assert_allclose(equalized.mean(), 0.0, atol=1e-5)  # still standardised


def test_a_model_trained_with_equalize_applies_it_when_it_reads(
    random_model: EmotionModel, tmp_path: Path
) -> None:
    """The flag travels in the model's sidecar: loading it reads faces as training saw them."""
    equalizing = EmotionModel(random_model.network, equalize=True)
    equalizing.save(tmp_path / "eq.keras")
    loaded = EmotionModel.load(tmp_path / "eq.keras")
    assert loaded.equalize and not random_model.equalize
    faces = np.random.default_rng(5).integers(40, 90, (3, 48, 48), dtype=np.uint8)
    np.testing.assert_allclose(
        loaded.embed_faces(faces),
        random_model.encode(preprocess_faces(faces, equalize=True)),
        atol=1e-5,
    )
    assert not np.allclose(loaded.embed_faces(faces), random_model.embed_faces(faces), atol=1e-3)
    sidecar = tmp_path / "eq.json"
    sidecar.write_text(sidecar.read_text().replace('"equalize": true', '"equalize": "yes"'))
    with pytest.raises(ValueError, match=r"Expected `equalize` true or false .* Received: 'yes'"):
        EmotionModel.load(tmp_path / "eq.keras")


def test_crop_face_clamps_to_the_frame() -> None:
    frame = np.zeros((100, 200), np.uint8)
    frame[10:60, 150:200] = 255
    crop = crop_face(frame, Box(160, 0, 50, 50))
    assert crop.shape == (48, 48) and crop.dtype == np.uint8 and crop.max() == 255
    with pytest.raises(ValueError, match="inside the 200×100 frame"):
        crop_face(frame, Box(500, 500, 10, 10))


def test_shipped_weights_load_and_predict() -> None:
    assert default_weights_path().is_file(), "the trained weights ship inside the package"
    model = EmotionModel.load()
    faces = np.random.default_rng(3).integers(0, 256, (2, 48, 48), dtype=np.uint8)
    np.testing.assert_allclose(model.predict_faces(faces).sum(axis=1), 1.0, rtol=1e-5)
