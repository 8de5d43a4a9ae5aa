"""Face finding: Haar detection on a downscaled frame, re-detection around faces, 48×48 crops."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.preprocess import DEFAULT_MARGIN, crop_face
from engine.tracking import FaceTracker, TrackerSettings
from engine.types import Box, FaceCrop, PersonAbsent

#: Pixel formats whose first plane is the luma (Y) plane: gray is a copy, no conversion.
_LUMA_FIRST = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"}
)
#: Side (pixels) the face gets in a re-detection patch: just above the 20 px Haar window, where
#: the search is cheapest (0.4 ms against 1.8 ms at 40 px) and frontal faces are still found.
_REFINE_FACE_SIDE = 30


@dataclass(frozen=True)
class DetectorSettings:
    """Where and how often faces are looked for (measured on 640×360 webcam tiles, one core).

    - ``detect_width=256``: full-frame Haar costs ~6 ms at 256 px wide against ~16 ms at 320 and
      ~40 ms at 640; a webcam face (≥ 1/7 of the tile height) is still ≥ 20 px, the Haar window.
      Raise it for classroom cameras with small faces (``classpulse analyze --detect-width``).
    - ``scale_factor=1.2``, ``min_neighbors=4``: half the pyramid levels of OpenCV's 1.1 for the
      same hit rate on frontal webcam faces; 4 neighbours rejects most textured backgrounds.
    - ``full_interval_s=5.0``: full detection only to notice new faces while someone is tracked;
      a second student sitting down can wait a few seconds.
    - ``search_interval_s=1.0``: while nobody is tracked, look every second so a returning face is
      back within about a second.
    - ``refine_interval_s=0.4``: re-detect each tracked face in its neighbourhood (~0.4 ms, a small
      patch) every other analysed frame at 5 fps; faces in a call move little in 0.4 s.
    - ``roi_margin=0.4``: the re-detection patch is the face box plus 0.4 of its side on each
      side, so a head may move that far between two checks and still be followed.
    """

    detect_width: int = 256
    scale_factor: float = 1.2
    min_neighbors: int = 4
    full_interval_s: float = 5.0
    search_interval_s: float = 1.0
    refine_interval_s: float = 0.4
    roi_margin: float = 0.4
    crop_margin: float = DEFAULT_MARGIN
    cascade: str = "haarcascade_frontalface_alt2.xml"
    tracker: TrackerSettings = field(default_factory=TrackerSettings)

    def __post_init__(self) -> None:
        if self.detect_width < 32:
            raise ValueError(f"Expected detect_width >= 32 pixels. Received: {self.detect_width}")
        if self.scale_factor <= 1.0:
            raise ValueError(f"Expected scale_factor > 1. Received: {self.scale_factor}")


def gray_from_frame(frame: Any) -> np.ndarray:
    """An ``av.VideoFrame`` → uint8 (H, W) gray, copied out of the frame.

    For YUV frames (what decoders give) this is the Y plane, no colour conversion at all, which is
    ~1000× cheaper than ``to_ndarray(format="gray")``.
    """
    if frame.format.name in _LUMA_FIRST:
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        return np.array(rows[:, : frame.width])
    return np.ascontiguousarray(frame.to_ndarray(format="gray"))


def check_gray(gray: np.ndarray) -> None:
    if not isinstance(gray, np.ndarray) or gray.dtype != np.uint8 or gray.ndim != 2:
        raise ValueError(
            "Expected a gray frame: a 2-D uint8 numpy array. Received: "
            + (
                f"dtype={gray.dtype}, shape={gray.shape}"
                if isinstance(gray, np.ndarray)
                else type(gray).__name__
            )
        )


class FaceDetector:
    """Loaded once per process; thread-safe (each thread gets its own OpenCV cascade)."""

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        self.settings = settings or DetectorSettings()
        self._path = Path(cv2.data.haarcascades) / self.settings.cascade  # type: ignore[attr-defined]
        if not self._path.is_file():
            raise FileNotFoundError(
                f"Expected OpenCV's Haar cascade {self.settings.cascade} (opencv-python-headless "
                f"4.x ships it). Received: {self._path} (not found)"
            )
        self._local = threading.local()
        self._cascade()  # fail now, not in the first frame, when the file is unreadable

    def _cascade(self) -> cv2.CascadeClassifier:
        cascade = getattr(self._local, "cascade", None)
        if cascade is None:
            cascade = cv2.CascadeClassifier(str(self._path))
            if cascade.empty():
                raise ValueError(f"Expected a valid Haar cascade file. Received: {self._path}")
            self._local.cascade = cascade
        return cascade

    def stream(self, source_id: str) -> FaceStream:
        """A per-source tracker that turns that source's frames into person crops."""
        return FaceStream(self, source_id)

    def detect(self, gray: np.ndarray) -> list[Box]:
        """Every face in a full gray frame, as boxes in its own pixels (searched downscaled)."""
        check_gray(gray)
        width = gray.shape[1]
        scale = min(1.0, self.settings.detect_width / width)
        small = _shrink(gray, scale)
        if min(small.shape) < 20:
            return []  # smaller than the Haar window: nothing can be found
        found = self._cascade().detectMultiScale(
            small, self.settings.scale_factor, self.settings.min_neighbors, minSize=(20, 20)
        )
        return [_scaled_box(row, 1.0 / scale, 0, 0) for row in np.asarray(found).reshape(-1, 4)]

    def refine(self, gray: np.ndarray, box: Box) -> list[Box]:
        """Faces of about ``box``'s size in its neighbourhood (the patch is searched at ~30 px)."""
        height, width = gray.shape
        side = max(box.width, box.height)
        pad = int(side * self.settings.roi_margin)
        x0, y0 = max(0, box.x - pad), max(0, box.y - pad)
        x1, y1 = min(width, box.x + box.width + pad), min(height, box.y + box.height + pad)
        if x1 - x0 < 20 or y1 - y0 < 20:
            return []
        scale = min(2.0, _REFINE_FACE_SIDE / side)
        patch = _shrink(gray[y0:y1, x0:x1], scale)
        if min(patch.shape) < 20:
            return []
        low = max(20, int(side * scale * 0.7))
        high = max(low + 1, int(side * scale * 1.45))
        found = self._cascade().detectMultiScale(
            patch,
            self.settings.scale_factor,
            self.settings.min_neighbors,
            minSize=(low, low),
            maxSize=(high, high),
        )
        return [_scaled_box(row, 1.0 / scale, x0, y0) for row in np.asarray(found).reshape(-1, 4)]


def _shrink(gray: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return gray
    height, width = gray.shape
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if scale > 1.0:
        return cv2.resize(gray, size, interpolation=cv2.INTER_LINEAR)
    step = int(1.0 / scale) // 2
    if step >= 2:
        # Decimate 4K-class frames first: area-averaging all their pixels costs ~10× more, and the
        # remaining 2× area reduction still removes the aliasing that hurts the cascade.
        gray = gray[::step, ::step]
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def _scaled_box(row: np.ndarray, factor: float, dx: int, dy: int) -> Box:
    x, y, w, h = (float(v) for v in row)
    return Box(
        round(x * factor) + dx,
        round(y * factor) + dy,
        max(1, round(w * factor)),
        max(1, round(h * factor)),
    )


@dataclass(frozen=True, slots=True)
class FrameFaces:
    """What one analysed frame of a source gave: crops of visible persons, persons just lost."""

    crops: tuple[FaceCrop, ...]
    absent: tuple[PersonAbsent, ...]


class FaceStream:
    """One video source (a participant's tile, a recorded video): frames in, person crops out.

    Person ids are ``f"{source_id}/{number}"``; several faces in one tile are several persons.
    Full detection runs every ``full_interval_s`` (``search_interval_s`` while nobody is tracked);
    in between, tracked faces are re-detected in their neighbourhood every ``refine_interval_s``
    and the last box is reused for the frames in between.
    """

    def __init__(self, detector: FaceDetector, source_id: str) -> None:
        self.detector = detector
        self.source_id = source_id
        self.tracker = FaceTracker(detector.settings.tracker)
        self._last_full_t: float | None = None
        self._last_refine_t: float | None = None
        #: Detection passes run so far (full, refine): what the benchmark reports.
        self.num_full = 0
        self.num_refine = 0

    def person_id(self, number: int) -> str:
        return f"{self.source_id}/{number}"

    def push(self, gray: np.ndarray, t: float) -> FrameFaces:
        """Analyse one gray frame taken at ``t`` seconds (call at the analysis rate, in order)."""
        check_gray(gray)
        settings = self.detector.settings
        tracker = self.tracker
        interval = settings.full_interval_s if tracker.num_active else settings.search_interval_s
        if self._last_full_t is None or t - self._last_full_t >= interval or t < self._last_full_t:
            update = tracker.update(t, self.detector.detect(gray))
            self._last_full_t = self._last_refine_t = t
            self.num_full += 1
        elif (
            self._last_refine_t is not None
            and t - self._last_refine_t >= settings.refine_interval_s
        ):
            active = tracker.active()
            boxes = [found for _, box in active for found in self.detector.refine(gray, box)]
            update = tracker.update(t, boxes, scope=[number for number, _ in active])
            self._last_refine_t = t
            self.num_refine += 1
        else:
            update = tracker.tick(t)
        crops = []
        for number, box in update.visible:
            try:
                crop = crop_face(gray, box, settings.crop_margin)
            except ValueError:
                continue  # a box squeezed against the border to < 2 px: skip this frame's crop
            crops.append(FaceCrop(self.person_id(number), t, box, crop))
        absent = tuple(PersonAbsent(self.person_id(n), t, seen) for n, seen in update.lost)
        return FrameFaces(tuple(crops), absent)


class FrameSampler:
    """Picks frames at ``fps`` from a faster stream by their timestamps (newest frame wins)."""

    def __init__(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError(f"Expected an analysis rate fps > 0. Received: {fps}")
        self.period_s = 1.0 / fps
        self._next_t: float | None = None

    def take(self, t: float) -> bool:
        """True when the frame at ``t`` seconds is due; frames in between are skipped."""
        period = self.period_s
        # A quarter period of slack absorbs timestamp jitter: 15 fps → 5 fps takes every third.
        if self._next_t is not None and self._next_t - 2 * period <= t < self._next_t - period / 4:
            return False
        if self._next_t is None or abs(t - self._next_t) >= period:
            self._next_t = t + period  # first frame, a gap, or a clock that went back: restart
        else:
            self._next_t += period
        return True
