"""From 468 mesh points to what the pipeline uses: head yaw/pitch, each eye's region for the
eyelid model and the openness its points give, the face's box, the next frame's mesh region and
the eye-aligned 48×48 crop."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from engine.landmarks.models import LEFT_EYE as KP_LEFT
from engine.landmarks.models import NUM_EYE_POINTS, Roi
from engine.landmarks.models import RIGHT_EYE as KP_RIGHT
from engine.preprocess import DEFAULT_MARGIN
from engine.types import FACE_SIZE, Attention, Box

#: Mesh points (MediaPipe's canonical face mesh numbering; the person's right eye is on the
#: image's left).
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263
FOREHEAD, CHIN = 10, 152
#: Each eye's two corners, image-left corner first: the eyelid model's region spans them.
RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS = (33, 133), (362, 263)
#: The eyelid model's square region: the corner distance times 2.3 (MediaPipe's own scale).
EYE_ROI_SCALE = 2.3
#: Eyelid-model points facing each other: upper lid 10–14 above lower lid 2–6 (corners 0 and 8).
LID_PAIRS = ((10, 2), (11, 3), (12, 4), (13, 5), (14, 6))
LID_CORNERS = (0, 8)
#: ``lid_openness`` under which eyes count as closed. Measured through the landmark stage (faces
#: placed in 640×360 frames, the nearer eye read): all 213 JAFFE photos, every one with open eyes,
#: read 0.132 and up (1st percentile 0.153; the lowest are smiles and disgust narrowing the eyes);
#: the 69 neutral Taiwanese photos 0.194 and up (median 0.247). Of the 1,232 Taiwanese photos the
#: 20 lowest (0.026-0.08) are all shut by inspection, relaxed (smiles) or squeezed (crying,
#: disgust); 0.10-0.15 holds both squeezed-shut eyes and narrow squints. 0.12 lies between,
#: below every open photo.
EYES_CLOSED_BELOW = 0.12

#: Side of the face's box over the 3-D distance between the outer eye corners, and how far its
#: centre lies below the corners' midpoint (in that distance, along the face's own down axis),
#: measured so the crop is framed like the Haar ``alt2`` box the shipped model was trained for:
#: on the 213 JAFFE photos placed in 640×360 frames (all found by both stages) the alt2 box side
#: is 1.87 eye distances (median; quartiles 1.82–1.91) and its centre 0.18 below the eyes
#: (0.16–0.20). Cross-check on 1,000 FER2013 faces (4× upscaled, padded; 972 found): FER's own
#: frame is 1.86 eye distances (1.71–2.07), i.e. 1.82 before ``DEFAULT_MARGIN``, centre 0.22
#: below. The 3-D distance, unlike the 2-D one, does not shrink when the head turns.
BOX_PER_EYE_DISTANCE = 1.87
CENTRE_BELOW_EYES = 0.18
#: The mesh's region for the next frame: the points' extent (along the eye line) times 1.5,
#: MediaPipe's own margin for following a face with its mesh.
ROI_SCALE = 1.5
#: Pitch of a level, frontal face as the mesh's 3-D forehead–chin line reads it (degrees),
#: measured on the 213 frontal JAFFE photos (median −6.3°, quartiles −9.6° to −3.5°); subtracted
#: so a level face reads 0.
PITCH_OFFSET_DEG = -6.3


@dataclass(frozen=True)
class LandmarkSettings:
    """How mesh points become decisions (defaults measured or taken from MediaPipe).

    - ``min_detection_score=0.5``: MediaPipe's threshold for the short-range BlazeFace model.
    - ``nms_iou=0.3``: MediaPipe's weighted-NMS overlap for the same model.
    - ``min_presence=0.5``: the mesh's own face-presence score below which a followed face is
      taken as gone (MediaPipe's tracking confidence); a face found again by BlazeFace returns.
    - ``yaw_limit_deg=30``, ``pitch_limit_deg=25``: beyond these the head is ``looking_away``;
      the issue's example limits, not yet fitted to classroom video (the frontal JAFFE photos
      read yaw −4.1° to 6.4° for 90 % of faces, pitch −3.3° to 2.8° quartiles: well inside).
    - ``eyes_closed_below=EYES_CLOSED_BELOW``: eyelid openness (``lid_openness``) under which
      the eyes count as closed; see that constant for what it was chosen from.
    """

    min_detection_score: float = 0.5
    nms_iou: float = 0.3
    min_presence: float = 0.5
    yaw_limit_deg: float = 30.0
    pitch_limit_deg: float = 25.0
    eyes_closed_below: float = EYES_CLOSED_BELOW

    def __post_init__(self) -> None:
        for name in ("min_detection_score", "nms_iou", "min_presence"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"Expected 0 < {name} < 1. Received: {value}")
        for name in ("yaw_limit_deg", "pitch_limit_deg"):
            value = getattr(self, name)
            if not 0.0 < value < 90.0:
                raise ValueError(f"Expected 0 < {name} < 90 degrees. Received: {value}")
        if not 0.0 <= self.eyes_closed_below < 1.0:
            raise ValueError(
                f"Expected 0 <= eyes_closed_below < 1. Received: {self.eyes_closed_below}"
            )


def check_points(points: np.ndarray, num_points: int = 468) -> None:
    if not isinstance(points, np.ndarray) or points.ndim != 2 or points.shape[0] != num_points:
        raise ValueError(
            f"Expected mesh points of shape ({num_points}, 2 or 3). Received: "
            + (f"shape={points.shape}" if isinstance(points, np.ndarray) else type(points).__name__)
        )


def lid_openness(eye: np.ndarray) -> float:
    """Eyelid gap over eye width from the eyelid model's 71 points (``LandmarkNets.eye``): the
    mean distance of the five upper–lower lid pairs (``LID_PAIRS``) over the corner distance."""
    eye = np.asarray(eye, np.float64)
    if eye.ndim != 2 or eye.shape[0] != NUM_EYE_POINTS or eye.shape[1] < 2:
        raise ValueError(
            f"Expected the eyelid model's points of shape ({NUM_EYE_POINTS}, 2). "
            f"Received: shape={eye.shape}"
        )
    width = float(np.linalg.norm(eye[LID_CORNERS[0], :2] - eye[LID_CORNERS[1], :2]))
    if width <= 0.0:
        return 0.0
    upper, lower = zip(*LID_PAIRS, strict=True)
    gaps = np.linalg.norm(eye[list(upper), :2] - eye[list(lower), :2], axis=1)
    return float(gaps.mean() / width)


def eye_roi(points: np.ndarray, corners: tuple[int, int]) -> Roi:
    """The eyelid model's region for one eye: centred between its two corners (mesh indices,
    image-left first), turned so they lie level, ``EYE_ROI_SCALE`` times their distance."""
    first, second = points[corners[0], :2], points[corners[1], :2]
    centre = (first + second) / 2
    side = float(np.linalg.norm(second - first)) * EYE_ROI_SCALE
    return Roi(float(centre[0]), float(centre[1]), max(side, 1.0), eye_angle(first, second))


def nearer_eye(points: np.ndarray) -> tuple[int, int]:
    """The corners of the eye the camera sees wider (the right eye on a tie): the one eye the
    eyelid model reads, as it costs 3.2-3.7 ms an eye on one core (as much as the whole mesh)
    and eyes close together; the nearer eye is also the one a turned head still shows."""
    right, left = (
        float(np.linalg.norm(points[a, :2] - points[b, :2]))
        for a, b in (RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS)
    )
    return LEFT_EYE_CORNERS if left > right else RIGHT_EYE_CORNERS


def head_pose(points: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) in degrees from the mesh's own 3-D points (``Attention``'s conventions:
    yaw positive turned to the person's left, pitch positive looking up).

    The face's normal is the cross product of the eye line (right → left outer corner) and the
    chin → forehead line; in image axes (x right, y down, z away from the camera) a frontal face's
    normal points at the camera (−z). In-plane tilt (roll) does not change it.

    The depth comes from the mesh network, which infers a head's shape: a flat photo warped in
    perspective to look turned 30°/50° reads only ~3° (right sign), as it has no depth to infer.
    """
    check_points(points)
    if points.shape[1] != 3:
        raise ValueError(f"Expected 3-D mesh points (468, 3). Received: shape={points.shape}")
    across = points[LEFT_EYE_OUTER] - points[RIGHT_EYE_OUTER]
    up = points[FOREHEAD] - points[CHIN]
    normal = np.cross(across, up)
    length = float(np.linalg.norm(normal))
    if length == 0.0:
        return 0.0, 0.0
    nx, ny, nz = normal / length
    yaw = math.degrees(math.atan2(nx, -nz))
    pitch = math.degrees(math.atan2(-ny, math.hypot(nx, nz))) - PITCH_OFFSET_DEG
    return yaw, pitch


def attention(points: np.ndarray, openness: float, settings: LandmarkSettings) -> Attention:
    """What a mesh and its ``nearer_eye``'s ``lid_openness`` say."""
    yaw, pitch = head_pose(points)
    return Attention(
        yaw_deg=round(yaw, 1),
        pitch_deg=round(pitch, 1),
        eye_openness=round(openness, 3),
        eyes_open=openness >= settings.eyes_closed_below,
        looking_away=abs(yaw) > settings.yaw_limit_deg or abs(pitch) > settings.pitch_limit_deg,
    )


def eye_angle(right: np.ndarray, left: np.ndarray) -> float:
    """Radians of the line from the right eye (image left) to the left eye, image y down."""
    return math.atan2(float(left[1] - right[1]), float(left[0] - right[0]))


def face_frame(points: np.ndarray) -> tuple[float, float, float, float]:
    """(cx, cy, side, angle): the crop square framed like the ``alt2`` box, eye-aligned."""
    right, left = points[RIGHT_EYE_OUTER], points[LEFT_EYE_OUTER]
    angle = eye_angle(right, left)
    distance = float(np.linalg.norm(left[:3] - right[:3]))
    mid = (right[:2] + left[:2]) / 2.0
    down = np.array([-math.sin(angle), math.cos(angle)])
    centre = mid + down * CENTRE_BELOW_EYES * distance
    return float(centre[0]), float(centre[1]), BOX_PER_EYE_DISTANCE * distance, angle


def face_box(points: np.ndarray) -> Box:
    """The face's upright box in frame pixels, sized and placed like the Haar ``alt2`` box."""
    cx, cy, side, _ = face_frame(points)
    return Box(round(cx - side / 2), round(cy - side / 2), max(1, round(side)), max(1, round(side)))


def aligned_crop(
    gray: np.ndarray, points: np.ndarray, margin: float = DEFAULT_MARGIN
) -> np.ndarray:
    """uint8 (48, 48): the face turned so its eyes are level, framed like ``crop_face`` frames
    the ``alt2`` box (same side and ``margin``), so the model sees the framing it learnt."""
    return framed_crop(gray, *face_frame(points), margin=margin)


def framed_crop(
    gray: np.ndarray,
    cx: float,
    cy: float,
    side: float,
    angle: float,
    margin: float = DEFAULT_MARGIN,
) -> np.ndarray:
    """uint8 (48, 48): the square of ``side`` centred at (cx, cy), turned by ``angle`` (a
    ``face_frame``), plus ``margin`` on every side: one resize at most and one ``warpAffine``."""
    side *= 1.0 + 2.0 * margin
    # Cut the turned square's bounding patch, and when it shrinks by more than 2× average it
    # down first: bilinear sampling alone would alias.
    reach = side / 2.0 * (abs(math.cos(angle)) + abs(math.sin(angle))) + 1.0
    height, width = gray.shape
    x0, y0 = max(0, math.floor(cx - reach)), max(0, math.floor(cy - reach))
    x1, y1 = min(width, math.ceil(cx + reach)), min(height, math.ceil(cy + reach))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"Expected a face inside the {width}×{height} frame. Received: {cx, cy}")
    patch = gray[y0:y1, x0:x1]
    step = max(1.0, side / FACE_SIZE / 2.0)
    if step > 1.0:
        size = (max(1, round((x1 - x0) / step)), max(1, round((y1 - y0) / step)))
        patch = cv2.resize(patch, size, interpolation=cv2.INTER_AREA)
    sx, sy = (x1 - x0) / patch.shape[1], (y1 - y0) / patch.shape[0]
    roi = Roi((cx - x0) / sx, (cy - y0) / sy, side / sx, angle)
    return cv2.warpAffine(
        patch,
        roi.corner_matrix(FACE_SIZE),
        (FACE_SIZE, FACE_SIZE),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def mesh_roi(points: np.ndarray) -> Roi:
    """The region to read this face's mesh from in the next frame: the points' extent along
    the eye line and across it, squared on the longer side, times ``ROI_SCALE``."""
    angle = eye_angle(points[RIGHT_EYE_OUTER], points[LEFT_EYE_OUTER])
    cos, sin = math.cos(angle), math.sin(angle)
    xy = points[:, :2]
    along = xy @ np.array([cos, sin])
    across = xy @ np.array([-sin, cos])
    a0, a1, c0, c1 = along.min(), along.max(), across.min(), across.max()
    ma, mc = (a0 + a1) / 2, (c0 + c1) / 2
    cx, cy = ma * cos - mc * sin, ma * sin + mc * cos
    return Roi(float(cx), float(cy), float(max(a1 - a0, c1 - c0) * ROI_SCALE), angle)


def detection_roi(box: Box, keypoints: np.ndarray) -> Roi:
    """The mesh's region for a face BlazeFace found: its box times 1.5, turned by the eyes
    (MediaPipe's detection-to-mesh step)."""
    angle = eye_angle(keypoints[KP_RIGHT], keypoints[KP_LEFT])
    side = max(box.width, box.height) * ROI_SCALE
    return Roi(box.x + box.width / 2, box.y + box.height / 2, side, angle)
