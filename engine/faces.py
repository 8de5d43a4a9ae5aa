"""Face finding: Haar detection on a downscaled frame, re-detection around faces, 48×48 crops."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.face_settings import STAGES, DetectorSettings
from engine.face_streams import FaceStream
from engine.frame_faces import FrameFaces, check_gray
from engine.landmarks import LandmarkStage
from engine.landmarks.hybrid import HybridFaceStream
from engine.landmarks.stream import LandmarkFaceStream
from engine.types import Box

logger = logging.getLogger(__name__)

__all__ = [
    "STAGES",
    "DetectorSettings",
    "FaceDetector",
    "FaceDetectors",
    "FaceStream",
    "FrameFaces",
    "FrameSampler",
    "SourceAnalyser",
    "gray_from_frame",
]

#: Pixel formats whose first plane is the luma (Y) plane: gray is a copy, no conversion.
_LUMA_FIRST = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"}
)
#: Side (pixels) the face gets in a re-detection patch: just above the 20 px Haar window, where
#: the search is cheapest (0.4 ms against 1.8 ms at 40 px) and frontal faces are still found.
_REFINE_FACE_SIDE = 30


def gray_from_frame(frame: Any) -> np.ndarray:
    """An ``av.VideoFrame`` → uint8 (H, W) gray.

    For YUV frames (what decoders give) this is a view of the Y plane: no copy and no colour
    conversion (~1000× cheaper than ``to_ndarray(format="gray")``). The view keeps the frame's
    plane, and so its memory, alive for as long as it is used.
    """
    if frame.format.name in _LUMA_FIRST:
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        return rows[:, : frame.width]
    return np.ascontiguousarray(frame.to_ndarray(format="gray"))


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
        self.landmarks = (
            LandmarkStage(self.settings.landmarks) if self.settings.stage != "haar" else None
        )

    def _cascade(self) -> cv2.CascadeClassifier:
        cascade = getattr(self._local, "cascade", None)
        if cascade is None:
            cascade = cv2.CascadeClassifier(str(self._path))
            if cascade.empty():
                raise ValueError(f"Expected a valid Haar cascade file. Received: {self._path}")
            self._local.cascade = cascade
        return cascade

    def stream(self, source_id: str) -> FaceStream | LandmarkFaceStream | HybridFaceStream:
        """A per-source tracker that turns that source's frames into person crops."""
        if self.landmarks is None:
            return FaceStream(self, source_id)
        settings = self.settings
        if settings.stage == "hybrid":
            return HybridFaceStream(self.landmarks, source_id, settings, self.detect)
        return LandmarkFaceStream(
            self.landmarks,
            source_id,
            full_interval_s=settings.full_interval_s,
            search_interval_s=settings.search_interval_s,
            retry_interval_s=settings.retry_interval_s,
            crop_margin=settings.crop_margin,
            tracker=settings.tracker,
            eyelid_interval_s=settings.eyelid_interval_s,
        )

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
            self.settings.refine_neighbors,
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


class FaceDetectors:
    """One ``FaceDetector`` per face stage, each loaded when first asked for (a stage's networks
    only in a process that runs it); ``ready``: detectors already loaded. Ask from one thread.

    ``settings``: what every stage's detector is built with, its ``stage`` replaced by the one
    asked for (default ``DetectorSettings()``); the bot runtime gives its media workers the same,
    so a lowered yaw limit holds wherever faces are read."""

    def __init__(self, *ready: FaceDetector, settings: DetectorSettings | None = None) -> None:
        self.settings = settings or DetectorSettings()
        self._by_stage: dict[str, FaceDetector] = {d.settings.stage: d for d in ready}

    def get(self, stage: str) -> FaceDetector:
        """The detector of ``stage`` (``STAGES``; ``ValueError`` naming it otherwise)."""
        found = self._by_stage.get(stage)
        if found is None:
            settings = replace(self.settings, stage=stage)  # type: ignore[arg-type]  # checked
            found = self._by_stage[stage] = FaceDetector(settings)
        return found


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


class SourceAnalyser:
    """One video source at the analysis rate: ``due(t)`` says whether to analyse the frame taken
    at ``t``, ``analyse(frame, t)`` finds its faces. The bot asks ``due`` on its event loop and
    runs ``analyse`` in a worker thread; the benchmark's pipeline does both in one call.

    When the frame size changes (a browser lowering its resolution under load, an SFU switching
    simulcast layers), every tracked box, template and mesh region is in the old pixels: the
    faces are found afresh in a new stream, whose first frame is a full search. Its person
    numbers start at 1 again, so the person of a one-person camera keeps their id (before, the
    tracker lost them and took the same face for a second person).
    """

    def __init__(self, detector: FaceDetector, source_id: str, fps: float) -> None:
        self.detector = detector
        self.source_id = source_id
        self.stream = detector.stream(source_id)
        self.sampler = FrameSampler(fps)
        self._size: tuple[int, ...] | None = None
        #: Frames whose analysis raised something other than ``ValueError`` (a stage's bug).
        self.num_failed = 0
        #: Times the frame size changed (each starts a new stream).
        self.num_resized = 0

    def due(self, t: float) -> bool:
        return self.sampler.take(t)

    def analyse(self, frame: Any, t: float) -> FrameFaces:
        """``frame``: an ``av.VideoFrame`` or a uint8 gray array."""
        gray = frame if isinstance(frame, np.ndarray) else gray_from_frame(frame)
        if self._size is not None and gray.shape != self._size:
            logger.info("frame size %s → %s: faces are found afresh", self._size, gray.shape)
            self.stream = self.detector.stream(self.source_id)
            self.num_resized += 1
        self._size = gray.shape
        return self.stream.push(gray, t)

    def analyse_or_skip(self, frame: Any, t: float) -> FrameFaces | None:
        """``analyse``, but a frame that fails is skipped (``None``) instead of ending the caller's
        loop: one odd frame must not stop a student's analysis for the rest of the class.

        An unreadable frame (``ValueError``) is a warning; any other failure is a bug in a face
        stage, logged with its traceback the first time and counted after that.
        """
        try:
            return self.analyse(frame, t)
        except ValueError as error:
            logger.warning("skipped an unreadable frame: %s", error)
        except Exception:
            self.num_failed += 1
            if self.num_failed == 1:
                logger.exception("the face stage failed on a frame; it is skipped")
            else:
                logger.warning("the face stage failed on %d frames so far", self.num_failed)
        return None
