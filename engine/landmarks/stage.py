"""The landmark face stage: BlazeFace finds faces, the face mesh reads each one's 468 points."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.frame_faces import check_gray
from engine.landmarks.geometry import (
    LEFT_EYE_CORNERS,
    LandmarkSettings,
    aligned_crop,
    attention,
    detection_roi,
    eye_roi,
    face_box,
    lid_openness,
    mesh_roi,
    nearer_eye,
)
from engine.landmarks.models import Detection, LandmarkNets, Roi
from engine.preprocess import DEFAULT_MARGIN
from engine.types import Attention, Box


@dataclass(frozen=True, slots=True, eq=False)  # eq on arrays is ambiguous
class LandmarkFace:
    """One face read by the mesh in one frame."""

    #: Upright box in frame pixels, sized and placed like the Haar ``alt2`` box.
    box: Box
    #: (468, 3) mesh points in frame pixels (z: depth on the x scale, smaller is nearer).
    points: np.ndarray
    #: The mesh's face-presence score in [0, 1].
    presence: float
    attention: Attention
    #: Whether the eyelid model read the eyes in this frame (else an earlier reading stands).
    eyes_read: bool = True

    def next_roi(self) -> Roi:
        """Where to read this face's mesh in the next frame."""
        return mesh_roi(self.points)


class LandmarkStage:
    """Loaded once per process (the two networks); thread-safe."""

    def __init__(self, settings: LandmarkSettings | None = None) -> None:
        self.settings = settings or LandmarkSettings()
        self.nets = LandmarkNets()

    def detect(self, gray: np.ndarray) -> list[LandmarkFace]:
        """Every face in a whole gray frame: BlazeFace, then the mesh on each detection."""
        found = []
        for detection in self.find(gray):
            face = self.read(gray, detection)
            if face is not None:
                found.append(face)
        return found

    def find(self, gray: np.ndarray) -> list[Detection]:
        """BlazeFace alone on a whole gray frame (no mesh yet)."""
        check_gray(gray)
        return self.nets.detect(gray, self.settings.min_detection_score, self.settings.nms_iou)

    def read(self, gray: np.ndarray, detection: Detection) -> LandmarkFace | None:
        """The mesh of a face BlazeFace found (``None`` when the mesh sees no face there)."""
        return self.follow(gray, detection_roi(detection.box, detection.keypoints))

    def follow(
        self, gray: np.ndarray, roi: Roi, openness: float | None = None
    ) -> LandmarkFace | None:
        """The face inside ``roi`` (its region from the last frame), or ``None`` when the mesh
        says no face is there. ``openness``: an eyelid reading still fresh enough to stand
        (the eyelid model is then not run); ``None`` reads the eyes now."""
        points, presence = self.nets.mesh(gray, roi)
        if presence < self.settings.min_presence:
            return None
        eyes_read = openness is None
        if openness is None:
            openness = self.eye_openness(gray, points)
        return LandmarkFace(
            face_box(points),
            points,
            presence,
            attention(points, openness, self.settings),
            eyes_read,
        )

    def eye_openness(self, gray: np.ndarray, points: np.ndarray) -> float:
        """``lid_openness`` of the ``nearer_eye``, read by the eyelid model in its own region.
        The mesh's own lid points barely close when the eyes do (real shut eyes 0.19-0.215,
        open 0.21-0.25 on the same performers); the eyelid model's do (0.024-0.079 shut,
        0.192-0.284 open; ``tests/engine/test_eyes_closed.py``)."""
        corners = nearer_eye(points)
        eye = self.nets.eye(gray, eye_roi(points, corners), corners == LEFT_EYE_CORNERS)
        return lid_openness(eye)

    @staticmethod
    def crop(gray: np.ndarray, face: LandmarkFace, margin: float = DEFAULT_MARGIN) -> np.ndarray:
        """The eye-aligned 48×48 crop, framed like ``crop_face`` on an ``alt2`` box."""
        return aligned_crop(gray, face.points, margin)
