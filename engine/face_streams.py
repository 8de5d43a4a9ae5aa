"""The Haar face stage's per-source stream: full detection now and then, re-detection near each
face once a second, template following in between."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from engine.face_template import face_template, match_template
from engine.frame_faces import FrameFaces, check_gray, due
from engine.preprocess import crop_face
from engine.tracking import FaceTracker, TrackerUpdate
from engine.types import Box, FaceCrop, PersonAbsent

if TYPE_CHECKING:
    from engine.face_settings import HaarSearch


class FaceStream:
    """One video source (a participant's tile, a recorded video): frames in, person crops out.

    Person ids are ``f"{source_id}/{number}"``; several faces in one tile are several persons.
    Full detection runs every ``full_interval_s`` (``search_interval_s`` while nobody is tracked),
    each tracked face is re-detected near itself every ``refine_interval_s``, and in the frames
    between, faces are followed by template matching, which also notices a face that went away.
    """

    def __init__(self, detector: HaarSearch, source_id: str) -> None:
        self.detector = detector
        self.source_id = source_id
        self.tracker = FaceTracker(detector.settings.tracker)
        self._last_full_t: float | None = None
        self._last_refine_t = float("-inf")
        #: Each visible person's look at the last detection, as a small template.
        self._templates: dict[int, np.ndarray] = {}
        #: Passes run so far: what the benchmark reports.
        self.num_full = 0
        self.num_refine = 0
        self.num_tracked = 0

    def person_id(self, number: int) -> str:
        return f"{self.source_id}/{number}"

    def push(self, gray: np.ndarray, t: float) -> FrameFaces:
        """Analyse one gray frame taken at ``t`` seconds (call at the analysis rate, in order)."""
        check_gray(gray)
        settings = self.detector.settings
        tracker = self.tracker
        interval = settings.full_interval_s if tracker.num_active else settings.search_interval_s
        if due(self._last_full_t, t, interval):
            update = tracker.update(t, self.detector.detect(gray))
            self._last_full_t = self._last_refine_t = t
            self.num_full += 1
        elif due(self._last_refine_t, t, settings.refine_interval_s) or (
            len(tracker.visible()) < len(tracker.active())
            and due(self._last_refine_t, t, settings.retry_interval_s)
        ):
            update = self._refine(gray, t)
        else:
            followed = self._follow(gray, tracker.visible())
            if followed is None:  # a face no longer looks like itself: re-detect it now
                update = self._refine(gray, t)
            else:
                self.num_tracked += 1
                visible = [number for number, _ in followed]
                update = tracker.update(t, [box for _, box in followed], scope=visible)
                return self._result(gray, t, update, refresh=False)
        return self._result(gray, t, update, refresh=True)

    def _refine(self, gray: np.ndarray, t: float) -> TrackerUpdate:
        active = self.tracker.active()
        boxes = [found for _, box in active for found in self.detector.refine(gray, box)]
        self._last_refine_t = t
        self.num_refine += 1
        return self.tracker.update(t, boxes, scope=[number for number, _ in active])

    def _follow(
        self, gray: np.ndarray, visible: Sequence[tuple[int, Box]]
    ) -> list[tuple[int, Box]] | None:
        """Each visible face's box moved to where its template matches best; ``None`` when one
        matches worse than ``track_min_score``."""
        followed = []
        for number, box in visible:
            template = self._templates.get(number)
            if template is None:
                return None
            score, moved = match_template(gray, box, template, self.detector.settings.roi_margin)
            if not score >= self.detector.settings.track_min_score:  # also NaN on flat frames
                return None
            followed.append((number, moved))
        return followed

    def _result(
        self, gray: np.ndarray, t: float, update: TrackerUpdate, refresh: bool
    ) -> FrameFaces:
        crops = []
        for number, box in update.visible:
            try:
                crop = crop_face(gray, box, self.detector.settings.crop_margin)
            except ValueError:
                continue  # a box squeezed against the border to < 2 px: skip this frame's crop
            crops.append(FaceCrop(self.person_id(number), t, box, crop))
        if refresh:  # after a detection: remember how each face looks now
            self._templates = {
                number: template
                for number, box in update.visible
                if (template := face_template(gray, box)) is not None
            }
        absent = tuple(PersonAbsent(self.person_id(n), t, seen) for n, seen in update.lost)
        return FrameFaces(tuple(crops), absent)
