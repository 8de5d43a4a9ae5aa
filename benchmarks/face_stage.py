"""Face stage benchmark: the Haar, landmark (BlazeFace + face mesh) and hybrid stages.

In one run, on the same frames, single-threaded OpenCV, in a process that imported aiortc (as the
media process does) and never TensorFlow, this prints:

1. cost: CPU ms per analysed frame and per face of each stage's ``FaceStream.push`` over a 5 fps
   stream of JAFFE faces in 640×360 frames (one face, then three; the hybrid stage also with
   ``aligned_crop``), the passes each ran, and the cost of each pass alone;
2. detection rate of each stage's full-frame detection on the 213 JAFFE photos placed in 640×360
   frames as the tests and benchmarks place them (``tests.engine.clips.render_frame``), upright,
   turned in-plane by ±15° and ±30°, and "turned" by a horizontal perspective warp of the photo
   (a flat face rotated ~30° and ~50° about the vertical axis), with the landmark stage's yaw;
   the hybrid column is the first ``push`` of a fresh hybrid stream (its full detection: BlazeFace,
   then the mesh on each detection);
3. framing: the Haar ``alt2`` box against the mesh's eye distance (the constants of
   ``engine.landmarks.geometry``) and how close the aligned crop is to the Haar crop.

    .venv/bin/python benchmarks/face_stage.py [--stream-s 60]

Prints figures only (no asserts). Nothing is written to disk.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiortc  # noqa: E402, F401  - the media process's company: measured beside it
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from engine.face_streams import FaceStream  # noqa: E402
from engine.face_template import face_template, match_template  # noqa: E402
from engine.faces import DetectorSettings, FaceDetector  # noqa: E402
from engine.landmarks import LandmarkStage  # noqa: E402
from engine.landmarks.geometry import (  # noqa: E402
    LEFT_EYE_OUTER,
    RIGHT_EYE_CORNERS,
    RIGHT_EYE_OUTER,
    eye_angle,
    eye_roi,
)
from engine.landmarks.hybrid import HybridFaceStream  # noqa: E402
from engine.landmarks.models import Roi  # noqa: E402
from engine.landmarks.stream import LandmarkFaceStream  # noqa: E402
from engine.preprocess import crop_face  # noqa: E402
from engine.settings_paths import datasets_dir  # noqa: E402
from engine.types import Box  # noqa: E402
from tests.engine.clips import Appearance, render_frame  # noqa: E402

T = TypeVar("T")
WIDTH, HEIGHT, FPS = 640, 360, 5.0
#: Where and how large ``render_frame`` places a photo (its defaults): centre, 0.6 of the height.
FACE_CENTRE = (WIDTH / 2, HEIGHT / 2)


def percentiles(values: Sequence[float]) -> str:
    if not values:
        return "—"
    p50, p95 = np.percentile(values, [50, 95])
    return f"{p50:6.2f} {p95:6.2f}"


def timed(call: Callable[[], T]) -> tuple[float, T]:
    start = time.thread_time()
    result = call()
    return (time.thread_time() - start) * 1000.0, result


def read_photos(folder: Path) -> list[np.ndarray]:
    photos = []
    for path in sorted(folder.glob("*.tiff")):
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is not None:
            photos.append(image)
    return photos


def placed(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return render_frame(WIDTH, HEIGHT, 0.0, [Appearance(photo, 0.0, 1.0, motion=0.0)], rng)


def rotated(frame: np.ndarray, degrees: float) -> np.ndarray:
    """The frame turned in-plane about the face's centre (positive: counter-clockwise)."""
    matrix = cv2.getRotationMatrix2D(FACE_CENTRE, degrees, 1.0)
    return cv2.warpAffine(frame, matrix, (WIDTH, HEIGHT), borderMode=cv2.BORDER_REPLICATE)


def turned(photo: np.ndarray, degrees: float, distance: float = 2.5) -> np.ndarray:
    """The photo as a flat card rotated ``degrees`` about its vertical axis, seen by a pinhole
    camera ``distance`` card widths away (positive: its right side, the person's left, recedes,
    as when the person turns to their left)."""
    height, width = photo.shape
    theta = math.radians(degrees)
    corners, moved = [], []
    for x, y in ((0, 0), (width, 0), (width, height), (0, height)):
        u, v = (x - width / 2) / width, (y - height / 2) / width
        depth = 1.0 + u * math.sin(theta) / distance
        corners.append((x, y))
        moved.append(
            (width / 2 + u * math.cos(theta) / depth * width, height / 2 + v / depth * width)
        )
    matrix = cv2.getPerspectiveTransform(np.array(corners, np.float32), np.array(moved, np.float32))
    return cv2.warpPerspective(photo, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)


def on_face(box: Box, face_side: float) -> bool:
    """A box whose centre lies on the placed face (within a third of its side of the centre)."""
    cx, cy = box.x + box.width / 2, box.y + box.height / 2
    return math.hypot(cx - FACE_CENTRE[0], cy - FACE_CENTRE[1]) < face_side / 3


def detection_table(photos: list[np.ndarray], haar: FaceDetector, stage: LandmarkStage) -> None:
    rng = np.random.default_rng(0)
    hybrid = FaceDetector(DetectorSettings(stage="hybrid"))
    variants: list[tuple[str, str, float]] = [("upright", "upright", 0.0)]
    variants += [(f"in-plane {d:+d}°", "in-plane", d) for d in (15, -15, 30, -30)]
    variants += [(f"turned {d:+d}°", "turned", d) for d in (30, -30, 50, -50)]
    variants += [("small (0.25 h)", "small", 0.0)]  # under BlazeFace's reach at 640×360

    def make(photo: np.ndarray, kind: str, degrees: float) -> np.ndarray:
        if kind == "in-plane":
            return rotated(placed(photo, rng), degrees)
        if kind == "small":
            face = Appearance(photo, 0.0, 1.0, size=0.25, motion=0.0)
            return render_frame(WIDTH, HEIGHT, 0.0, [face], rng)
        return placed(turned(photo, degrees) if kind == "turned" else photo, rng)

    print(f"\n2. Detection rate on {len(photos)} JAFFE photos in {WIDTH}×{HEIGHT} frames")
    print(
        f"{'frames':16} {'Haar':>8} {'landmarks':>10} {'hybrid':>8} {'yaw p50 (p5–p95)':>22} "
        f"{'pitch p50':>10}"
    )
    for name, kind, degrees in variants:
        num_haar = num_landmarks = num_hybrid = 0
        yaws, pitches = [], []
        face_side = (0.25 if kind == "small" else 0.6) * HEIGHT
        for photo in photos:
            frame = make(photo, kind, degrees)
            num_haar += any(on_face(box, face_side) for box in haar.detect(frame))
            crops = hybrid.stream("photo").push(frame, 0.0).crops
            num_hybrid += any(on_face(crop.box, face_side) for crop in crops)
            faces = [face for face in stage.detect(frame) if on_face(face.box, face_side)]
            if faces:
                num_landmarks += 1
                yaws.append(faces[0].attention.yaw_deg)
                pitches.append(faces[0].attention.pitch_deg)
        count = len(photos)
        spread = (
            "{:6.1f} ({:5.1f}–{:5.1f})".format(*np.percentile(yaws, [50, 5, 95])) if yaws else "—"
        )
        pitch = f"{np.median(pitches):6.1f}" if pitches else "—"
        print(
            f"{name:16} {num_haar / count:8.3f} {num_landmarks / count:10.3f} "
            f"{num_hybrid / count:8.3f} {spread:>22} {pitch:>10}"
        )


def framing_table(photos: list[np.ndarray], haar: FaceDetector, stage: LandmarkStage) -> None:
    rng = np.random.default_rng(1)
    ratios, below, across, similarity = [], [], [], []
    for photo in photos:
        frame = placed(photo, rng)
        boxes, faces = haar.detect(frame), stage.detect(frame)
        if not boxes or not faces:
            continue
        box, face = max(boxes, key=lambda b: b.area), faces[0]
        right, left = face.points[RIGHT_EYE_OUTER], face.points[LEFT_EYE_OUTER]
        distance = float(np.linalg.norm(left - right))
        angle = eye_angle(right, left)
        offset = (
            np.array([box.x + box.width / 2, box.y + box.height / 2]) - (right[:2] + left[:2]) / 2
        )
        ratios.append(max(box.width, box.height) / distance)
        below.append(offset @ np.array([-math.sin(angle), math.cos(angle)]) / distance)
        across.append(offset @ np.array([math.cos(angle), math.sin(angle)]) / distance)
        a = crop_face(frame, box).astype(np.float64)
        b = stage.crop(frame, face).astype(np.float64)
        similarity.append(float(np.corrcoef(a.ravel(), b.ravel())[0, 1]))
    quartiles = lambda values: "{:.3f} ({:.3f}–{:.3f})".format(*np.percentile(values, [50, 25, 75]))  # noqa: E731
    print(
        f"\n3. Framing on {len(ratios)} upright JAFFE frames found by both stages (median, quartiles)"
    )
    print(f"alt2 box side / 3-D outer-eye distance: {quartiles(ratios)}")
    print(f"alt2 box centre below the eyes (eye distances): {quartiles(below)}")
    print(f"alt2 box centre along the eye line (eye distances): {quartiles(across)}")
    print(f"correlation of the aligned crop with the Haar crop: {quartiles(similarity)}")


def stream_frames(photos: list[np.ndarray], seconds: float, num_faces: int) -> list[np.ndarray]:
    """``seconds`` of 5 fps frames: ``num_faces`` faces side by side, a new photo every 4 s."""
    rng = np.random.default_rng(2)
    frames, per_photo = [], 4.0
    for index in range(round(seconds * FPS)):
        t = index / FPS
        slot = int(t // per_photo)
        appearances = [
            Appearance(
                photos[(slot * num_faces + k) * 7 % len(photos)],
                0.0,
                seconds,
                cx=(k + 0.5) / num_faces,
                size=0.6 if num_faces == 1 else 0.45,
            )
            for k in range(num_faces)
        ]
        frames.append(render_frame(WIDTH, HEIGHT, t, appearances, rng))
    return frames


#: The streams the cost table runs: (label, settings).
STREAMS = (
    ("haar", DetectorSettings(stage="haar")),
    ("landmarks", DetectorSettings(stage="landmarks")),
    ("hybrid", DetectorSettings(stage="hybrid")),
    ("hybrid+aligned", DetectorSettings(stage="hybrid", aligned_crop=True)),
)


def passes(
    stream: FaceStream | LandmarkFaceStream | HybridFaceStream, seconds: float, num_faces: int
) -> str:
    """Full detections a stream ran, then its checks per face and second: Haar re-detections
    near the faces, or mesh reads (the landmark stage reads every face in every frame)."""
    if isinstance(stream, HybridFaceStream):
        checks = stream.num_mesh
    elif isinstance(stream, LandmarkFaceStream):
        checks = (stream.num_tracked + stream.num_full) * num_faces
    else:
        checks = stream.num_refine
    return f"{stream.num_full:5d} {checks / (seconds * max(1, num_faces)):9.2f}"


def cost_table(photos: list[np.ndarray], seconds: float) -> None:
    print(
        f"\n1. Cost, CPU ms (median p95 | mean), 5 fps {WIDTH}×{HEIGHT} stream of {seconds:.0f} s, "
        "one thread"
    )
    print(
        f"{'stage':15} {'faces':>5} {'per frame':>14} {'mean':>6} {'per face':>14} {'mean':>6} "
        f"{'crops/frame':>12} {'full':>5} {'checks/f/s':>9}"
    )
    for num_faces in (0, 1, 3):  # 0: a faceless tile (camera pointed away)
        frames = stream_frames(photos, seconds, num_faces)
        for label, settings in STREAMS:
            stream = FaceDetector(settings).stream("cam")
            per_frame, per_face, crops = [], [], []
            for index, frame in enumerate(frames):
                start = time.thread_time()
                num = len(stream.push(frame, index / FPS).crops)
                spent = (time.thread_time() - start) * 1000.0
                per_frame.append(spent)
                crops.append(num)
                if num:
                    per_face.append(spent / num)
            # The mean is what capacity needs: the rare full detections and mesh reads are in it.
            print(
                f"{label:15} {num_faces:5d} {percentiles(per_frame):>14} {np.mean(per_frame):6.2f} "
                f"{percentiles(per_face):>14} {np.mean(per_frame) / max(1, num_faces):6.2f} "
                f"{np.mean(crops):12.2f} {passes(stream, seconds, num_faces)}"
            )


def pass_table(photos: list[np.ndarray], haar: FaceDetector, stage: LandmarkStage) -> None:
    rng = np.random.default_rng(3)
    frames = [placed(photo, rng) for photo in photos[:60]]
    names = (
        "Haar full frame (256 px wide)",
        "Haar re-detection near a face",
        "Haar crop_face",
        "template follow (match_template)",
        "BlazeFace full frame",
        "face mesh, one face",
        "eyelid model, one eye",
        "mesh + pose + eyelids + aligned crop",
    )
    rows: dict[str, list[float]] = {name: [] for name in names}

    def follow_and_crop(frame: np.ndarray, roi: Roi) -> None:
        face = stage.follow(frame, roi)
        if face is not None:
            stage.crop(frame, face)

    for frame in frames:
        spent, boxes = timed(partial(haar.detect, frame))
        rows[names[0]].append(spent)
        if boxes:
            rows[names[1]].append(timed(partial(haar.refine, frame, boxes[0]))[0])
            rows[names[2]].append(timed(partial(crop_face, frame, boxes[0]))[0])
            template = face_template(frame, boxes[0])
            if template is not None:
                follow = partial(match_template, frame, boxes[0], template, 0.4)
                rows[names[3]].append(timed(follow)[0])
        rows[names[4]].append(timed(partial(stage.nets.detect, frame, 0.5, 0.3))[0])
        faces = stage.detect(frame)
        if faces:
            roi = faces[0].next_roi()
            rows[names[5]].append(timed(partial(stage.nets.mesh, frame, roi))[0])
            eye = eye_roi(faces[0].points, RIGHT_EYE_CORNERS)
            rows[names[6]].append(timed(partial(stage.nets.eye, frame, eye, False))[0])
            rows[names[7]].append(timed(partial(follow_and_crop, frame, roi))[0])
    print(f"\n   Each pass alone on {len(frames)} frames, CPU ms (median p95)")
    for name, values in rows.items():
        print(f"   {name:34} {percentiles(values):>14}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--stream-s", type=float, default=60.0)
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    folder = datasets_dir() / "jaffe"
    photos = read_photos(folder)
    if not photos:
        raise SystemExit(f"Expected JAFFE .tiff photos. Received: none in {folder}")
    haar = FaceDetector()
    stage = LandmarkStage()
    print(
        f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
        f"tensorflow imported: {'tensorflow' in sys.modules}"
    )
    cost_table(photos, args.stream_s)
    pass_table(photos, haar, stage)
    detection_table(photos, haar, stage)
    framing_table(photos, haar, stage)
    print(
        f"\nload average at end: {os.getloadavg()[0]:.2f}; "
        f"tensorflow imported: {'tensorflow' in sys.modules}"
    )


if __name__ == "__main__":
    main()
