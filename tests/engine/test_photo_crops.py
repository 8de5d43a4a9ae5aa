"""Photos through the live face stage: the crop a camera's first frame would give, and the
camera copies the stage-stability figure is measured on."""

from __future__ import annotations

import numpy as np

from engine.datasets.images import live_detector, live_face, photo_face
from engine.training.heldout import CAMERA_GAIN, camera_copy
from engine.types import FACE_SIZE
from tests.engine.test_landmarks import portrait  # noqa: F401 - fixture


def test_a_photo_gets_the_live_stage_crop_of_its_face(portrait: np.ndarray) -> None:  # noqa: F811
    photo = photo_face(portrait)
    found = live_face(portrait)
    assert found is not None and photo.box == found[0]
    assert photo.crop.shape == (FACE_SIZE, FACE_SIZE) and photo.crop.dtype == np.uint8
    # Exactly what a fresh stream of the live detector crops from that frame.
    (crop,) = live_detector().stream("camera").push(portrait, 0.0).crops
    np.testing.assert_array_equal(photo.crop, crop.crop)


def test_a_photo_without_a_face_has_no_live_crop() -> None:
    wall = np.full((360, 640), 128, np.uint8)
    assert live_face(wall) is None
    photo = photo_face(wall)
    assert photo.box is None  # left out of scoring: the bot would never score it


def test_camera_copies_change_exposure_and_noise_within_bounds(portrait: np.ndarray) -> None:  # noqa: F811
    rng = np.random.default_rng(1)
    flat = np.full((100, 100), 100, np.uint8)
    copies = [camera_copy(flat, rng) for _ in range(50)]
    means = [float(c.mean()) for c in copies]
    assert min(means) >= 100 * (1 - CAMERA_GAIN) - 1 and max(means) <= 100 * (1 + CAMERA_GAIN) + 1
    assert max(means) - min(means) > 5  # the exposure really changes from copy to copy
    assert all(c.std() > 2 for c in copies)  # and every copy has sensor noise
    assert live_face(camera_copy(portrait, rng)) is not None  # the face survives it
