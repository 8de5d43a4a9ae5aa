"""One video source through the landmark stage: BlazeFace finds faces, each face's mesh follows it."""

from __future__ import annotations

import numpy as np

from engine.frame_faces import FrameFaces, check_gray, due, full_pass_interval
from engine.landmarks.models import Roi
from engine.landmarks.stage import LandmarkFace, LandmarkStage
from engine.tracking import FaceTracker, TrackerSettings, TrackerUpdate
from engine.types import FaceCrop, PersonAbsent


class LandmarkFaceStream:
    """Frames of one source in, person crops with ``Attention`` out (``FaceStream``'s interface).

    BlazeFace runs on the whole frame every ``full_interval_s`` (``search_interval_s`` while
    nobody is tracked, ``retry_interval_s`` while a tracked face is missing); in every other
    frame each tracked face's mesh is read in the region its last mesh gives (MediaPipe's own
    tracking), and the mesh's face-presence score says whether the face is still there.
    ``FaceTracker`` keeps person numbers, as with the Haar stage. The eyelid model reads a
    person's eyes at most every ``eyelid_interval_s`` (``DetectorSettings``).
    """

    def __init__(
        self,
        stage: LandmarkStage,
        source_id: str,
        *,
        full_interval_s: float,
        search_interval_s: float,
        retry_interval_s: float,
        crop_margin: float,
        tracker: TrackerSettings,
        eyelid_interval_s: float = 2.0,
    ) -> None:
        self.stage = stage
        self.source_id = source_id
        self.tracker = FaceTracker(tracker)
        self._intervals = (full_interval_s, search_interval_s, retry_interval_s)
        self._crop_margin = crop_margin
        self._last_full_t: float | None = None
        #: Where each tracked person's mesh is read next (from its last mesh).
        self._rois: dict[int, Roi] = {}
        #: Each tracked person's last eyelid reading: (when, openness); see ``eyelid_interval_s``.
        self._eyes: dict[int, tuple[float, float]] = {}
        self._eyelid_interval_s = eyelid_interval_s
        #: Passes run so far: what the benchmark reports (``num_refine``: mesh-only frames).
        self.num_full = 0
        self.num_refine = 0
        self.num_tracked = 0

    def person_id(self, number: int) -> str:
        return f"{self.source_id}/{number}"

    def push(self, gray: np.ndarray, t: float) -> FrameFaces:
        """Analyse one gray frame taken at ``t`` seconds (call at the analysis rate, in order)."""
        check_gray(gray)
        full_s, search_s, retry_s = self._intervals
        tracker = self.tracker
        interval = full_pass_interval(
            len(tracker.active()),
            len(tracker.visible()),
            full_s=full_s,
            search_s=search_s,
            retry_s=retry_s,
        )
        if due(self._last_full_t, t, interval):
            faces = self.stage.detect(gray)
            update = tracker.update(t, [face.box for face in faces])
            self._last_full_t = t
            self.num_full += 1
        else:
            faces, scope = [], []
            for number, _ in tracker.active():
                roi = self._rois.get(number)
                if roi is None:
                    continue
                scope.append(number)
                openness, eyes = None, self._eyes.get(number)
                if eyes is not None and not due(eyes[0], t, self._eyelid_interval_s):
                    openness = eyes[1]  # still fresh: the eyelid model is not run again
                face = self.stage.follow(gray, roi, openness)
                if face is not None:
                    faces.append(face)
            update = tracker.update(t, [face.box for face in faces], scope=scope)
            self.num_tracked += 1
        return self._result(gray, t, update, faces)

    def _result(
        self, gray: np.ndarray, t: float, update: TrackerUpdate, faces: list[LandmarkFace]
    ) -> FrameFaces:
        crops = []
        for number, box in update.visible:
            # The tracker keeps the very Box object it matched: find the face it came from.
            face = next((face for face in faces if face.box is box), None)
            if face is None:
                continue  # seen at an earlier check of this update, not read in this frame
            self._rois[number] = face.next_roi()
            if face.eyes_read:
                self._eyes[number] = (t, face.attention.eye_openness)
            try:
                crop = self.stage.crop(gray, face, self._crop_margin)
            except ValueError:
                continue  # a face squeezed against the border: skip this frame's crop
            crops.append(FaceCrop(self.person_id(number), t, box, crop, face.attention))
        for number, _ in update.lost:
            self._rois.pop(number, None)
            self._eyes.pop(number, None)
        absent = tuple(PersonAbsent(self.person_id(n), t, seen) for n, seen in update.lost)
        return FrameFaces(tuple(crops), absent)
