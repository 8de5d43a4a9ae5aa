"""The hybrid face stage: BlazeFace finds faces, templates follow them frame to frame, and the face
mesh reads each face once per ``attention_interval_s`` (attention, box correction, presence)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.face_template import face_template, match_template
from engine.frame_faces import FrameFaces, check_gray, due, full_pass_interval
from engine.landmarks.geometry import ROI_SCALE, face_frame, framed_crop
from engine.landmarks.models import Roi
from engine.landmarks.stage import LandmarkFace, LandmarkStage
from engine.preprocess import crop_face
from engine.tracking import FaceTracker, TrackerUpdate
from engine.types import Attention, Box, FaceCrop, PersonAbsent

if TYPE_CHECKING:
    from engine.face_settings import DetectorSettings


@dataclass(slots=True)
class _Followed:
    """One tracked face as its last mesh read left it."""

    #: When the mesh last read this face (seconds).
    read_t: float
    #: Its box at that read: template moves since then shift the mesh region and the crop frame.
    read_box: Box
    #: Where to read its mesh next, as of the read.
    roi: Roi
    #: The eye-aligned crop square as of the read: (cx, cy, side, angle), see ``face_frame``.
    frame: tuple[float, float, float, float]
    #: ``None``: the mesh could not read a face Haar found or a template still follows (a small,
    #: blurred or blocky face): it is analysed, its attention is not known.
    attention: Attention | None
    #: Its look at the read, followed in the frames until the next read.
    template: np.ndarray | None
    #: When the eyelid model last read its eyes (``None``: never; see ``eyelid_interval_s``).
    eyes_t: float | None = None

    def openness(self, t: float, interval_s: float) -> float | None:
        """The last eyelid reading while it is younger than ``interval_s``, else ``None``."""
        if self.attention is None or self.eyes_t is None or due(self.eyes_t, t, interval_s):
            return None
        return self.attention.eye_openness


def _moved(roi: Roi, box: Box, since: Box) -> Roi:
    return Roi(roi.cx + box.x - since.x, roi.cy + box.y - since.y, roi.side, roi.angle)


def _box_roi(box: Box) -> Roi:
    """The mesh's region for an upright face box from Haar (no eye keypoints: level)."""
    side = max(box.width, box.height) * ROI_SCALE
    return Roi(box.x + box.width / 2, box.y + box.height / 2, side, 0.0)


def _box_frame(box: Box) -> tuple[float, float, float, float]:
    """The upright crop square of a box (what ``crop_face`` frames), as a ``face_frame``."""
    return (box.x + box.width / 2, box.y + box.height / 2, float(max(box.width, box.height)), 0.0)


def _inside(detection_box: Box, box: Box) -> bool:
    cx = detection_box.x + detection_box.width / 2
    cy = detection_box.y + detection_box.height / 2
    return box.x <= cx <= box.x + box.width and box.y <= cy <= box.y + box.height


class HybridFaceStream:
    """Frames of one source in, person crops with ``Attention`` out (``FaceStream``'s interface).

    - **Finding faces**: BlazeFace on the whole frame every ``full_interval_s``
      (``search_interval_s`` while nobody is tracked, ``retry_interval_s`` while a tracked face
      is missing): it is cheaper than full-frame Haar and finds faces turned in-plane. Only its
      detections that are not an already followed face are read by the mesh. When no face is
      followed and BlazeFace finds none, Haar (``haar``) searches the frame too and the mesh reads
      its boxes: BlazeFace misses ~1 % of faces turned 50° that Haar finds, so the hybrid
      finds at least what either finds, at the price of both passes on a faceless tile. A Haar
      face the mesh cannot read (small, blurred, blocky: a browser's lowest simulcast layer) is
      still a face: it is followed and cropped with its attention unknown (``None``).
    - **Following**: in every frame each visible face is followed by template matching against its
      look at its last mesh read (Haar stage's ~0.1 ms); a match below ``track_min_score`` (the
      face turned, left, or the frame went black) reads the mesh at once.
    - **The mesh** reads each face once per ``attention_interval_s`` (and at once when the template
      fails): the ``Attention``, the box corrected to the alt2-like framing (it follows turned
      faces that Haar loses), and the face-presence score (below ``min_presence`` the face is
      missing, and lost after the tracker's ``lost_after_s``) — unless its template still
      matches: then it stays, attention unknown, and the mesh tries again a period later. A
      missing face is also looked for by the mesh at its last region at each retry.
    - **Crops** keep the Haar framing (``crop_face`` on the box), which the shipped model was
      trained on; ``aligned_crop=True`` gives the eye-aligned crop instead, from the last read's
      roll and scale moved with the template (one ``warpAffine``).
    - **Attention between reads**: each crop carries the ``Attention`` of its face's last mesh
      read, which is never older than ``attention_interval_s`` (plus the frame being analysed):
      the read is repeated once it is that old, and a failed read leaves the face missing, with no
      crop. The session sums attention per 1 s sample, so a reading repeated over the frames of
      its second weighs what one reading a second weighs.
    """

    def __init__(
        self,
        stage: LandmarkStage,
        source_id: str,
        settings: DetectorSettings,
        haar: Callable[[np.ndarray], list[Box]] | None = None,
    ) -> None:
        self.stage = stage
        self.haar = haar
        self.source_id = source_id
        self.settings = settings
        self.tracker = FaceTracker(settings.tracker)
        self._last_full_t: float | None = None
        self._faces: dict[int, _Followed] = {}
        #: Passes run so far, what the benchmark reports: full-frame BlazeFace passes, mesh reads,
        #: faces followed by their template alone.
        self.num_full = 0
        self.num_mesh = 0
        self.num_tracked = 0

    def person_id(self, number: int) -> str:
        return f"{self.source_id}/{number}"

    def push(self, gray: np.ndarray, t: float) -> FrameFaces:
        """Analyse one gray frame taken at ``t`` seconds (call at the analysis rate, in order)."""
        check_gray(gray)
        settings, tracker = self.settings, self.tracker
        active, visible = tracker.active(), tracker.visible()
        interval = full_pass_interval(
            len(active),
            len(visible),
            full_s=settings.full_interval_s,
            search_s=settings.search_interval_s,
            retry_s=settings.retry_interval_s,
        )
        full = due(self._last_full_t, t, interval)
        boxes: list[Box] = []
        reads: dict[int, LandmarkFace] = {}  # id(box) → the mesh read that gave the box
        unread: set[int] = set()  # id(box) of faces found or followed that the mesh cannot read
        for number, box in visible:
            self._follow(gray, t, number, box, boxes, reads, unread)
        if not full:
            update = tracker.update(t, boxes, scope=[number for number, _ in visible])
            return self._result(gray, t, update, boxes, reads, unread)
        shown = {number for number, _ in visible}
        for number, box in active:
            followed = self._faces.get(number)
            if number not in shown and followed is not None:  # missing: look where it was
                self._keep(
                    self._read(gray, _moved(followed.roi, box, followed.read_box)), boxes, reads
                )
        for detection in self.stage.find(gray):
            if not any(_inside(detection.box, box) for box in boxes):
                self.num_mesh += 1
                self._keep(self.stage.read(gray, detection), boxes, reads)
        if not boxes and self.haar is not None:
            for box in self.haar(gray):
                if not self._keep(self._read(gray, _box_roi(box)), boxes, reads):
                    boxes.append(box)
                    unread.add(id(box))
        self._last_full_t = t
        self.num_full += 1
        return self._result(gray, t, tracker.update(t, boxes), boxes, reads, unread)

    def _follow(
        self,
        gray: np.ndarray,
        t: float,
        number: int,
        box: Box,
        boxes: list[Box],
        reads: dict[int, LandmarkFace],
        unread: set[int],
    ) -> None:
        """Where the visible face ``number`` is now: template, or a mesh read when due or lost."""
        followed = self._faces.get(number)
        if followed is None:
            return
        settings = self.settings
        score, moved = 0.0, box
        if followed.template is not None:
            score, moved = match_template(gray, box, followed.template, settings.roi_margin)
        matched = score >= settings.track_min_score  # False for NaN (a flat frame)
        if matched and not due(followed.read_t, t, settings.attention_interval_s):
            self.num_tracked += 1
            boxes.append(moved)
            return
        at = moved if matched else box
        openness = followed.openness(t, settings.eyelid_interval_s)
        read = self._read(gray, _moved(followed.roi, at, followed.read_box), openness)
        if not self._keep(read, boxes, reads) and matched:
            # The mesh cannot read it, but its template says it is still there: keep it, unread.
            boxes.append(moved)
            unread.add(id(moved))

    def _read(
        self, gray: np.ndarray, roi: Roi, openness: float | None = None
    ) -> LandmarkFace | None:
        self.num_mesh += 1
        return self.stage.follow(gray, roi, openness)

    @staticmethod
    def _keep(face: LandmarkFace | None, boxes: list[Box], reads: dict[int, LandmarkFace]) -> bool:
        if face is None:
            return False
        boxes.append(face.box)
        reads[id(face.box)] = face
        return True

    def _result(
        self,
        gray: np.ndarray,
        t: float,
        update: TrackerUpdate,
        boxes: list[Box],
        reads: dict[int, LandmarkFace],
        unread: set[int],
    ) -> FrameFaces:
        passed = {id(box) for box in boxes}
        crops = []
        for number, box in update.visible:
            if id(box) not in passed:
                continue  # the tracker keeps the very Box: this one was seen at an earlier check
            face = reads.get(id(box))
            if face is not None:
                before = self._faces.get(number)
                followed = self._faces[number] = _Followed(
                    t,
                    box,
                    face.next_roi(),
                    face_frame(face.points),
                    face.attention,
                    face_template(gray, box),
                    t if face.eyes_read else (before.eyes_t if before else None),
                )
            elif id(box) in unread:
                before = self._faces.get(number)
                followed = self._faces[number] = _Followed(
                    t,
                    box,
                    _moved(before.roi, box, before.read_box) if before else _box_roi(box),
                    _box_frame(box),
                    None,
                    face_template(gray, box),
                )
            elif (found := self._faces.get(number)) is not None:
                followed = found
            else:
                continue
            try:
                crop = self._crop(gray, box, followed)
            except ValueError:
                continue  # a face squeezed against the border: skip this frame's crop
            crops.append(FaceCrop(self.person_id(number), t, box, crop, followed.attention))
        for number, _ in update.lost:
            self._faces.pop(number, None)
        absent = tuple(PersonAbsent(self.person_id(n), t, seen) for n, seen in update.lost)
        return FrameFaces(tuple(crops), absent)

    def _crop(self, gray: np.ndarray, box: Box, followed: _Followed) -> np.ndarray:
        margin = self.settings.crop_margin
        if not self.settings.aligned_crop:
            return crop_face(gray, box, margin)
        cx, cy, side, angle = followed.frame
        dx, dy = box.x - followed.read_box.x, box.y - followed.read_box.y
        return framed_crop(gray, cx + dx, cy + dy, side, angle, margin)
