"""Face stage settings: which stage runs and how often it looks (``engine.faces`` runs them).

Apart from ``engine.faces`` so the per-source streams (``engine.face_streams``,
``engine.landmarks.hybrid``) read their settings without importing the detector that builds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from engine.landmarks.geometry import LandmarkSettings
from engine.preprocess import DEFAULT_MARGIN
from engine.tracking import TrackerSettings
from engine.types import Box

#: The face stages ``DetectorSettings.stage`` names.
STAGES = ("haar", "landmarks", "hybrid")


@dataclass(frozen=True)
class DetectorSettings:
    """Where and how often faces are looked for (measured on 640×360 webcam tiles, one core).

    - ``detect_width=256``: full-frame Haar costs ~6 ms at 256 px wide against ~16 ms at 320 and
      ~40 ms at 640; a webcam face (≥ 1/7 of the tile height) is still ≥ 20 px, the Haar window.
      Raise it for classroom cameras with small faces (``classpulse analyze --detect-width``).
    - ``scale_factor=1.2``, ``min_neighbors=4``: half the pyramid levels of OpenCV's 1.1 for the
      same hit rate on frontal webcam faces; 4 neighbours rejects most textured backgrounds.
    - ``full_interval_s=8.0``: full detection (the largest cost after decoding) only to notice
      new faces while someone is tracked; a second student sitting down can wait a few seconds.
    - ``search_interval_s=1.0``: while nobody is tracked, look every second so a returning face is
      back within about a second.
    - ``refine_interval_s=1.0``: re-detect each tracked face with Haar in its neighbourhood (~0.5
      ms: a small patch, searched at ~30 px and only near the face's size) once a second; this
      corrects size and drift and confirms it is still a face.
    - ``retry_interval_s=0.4``: while a tracked face is missing, re-detect it this often until it
      is back or lost (``tracker.lost_after_s``).
    - ``track_min_score=0.6``: between re-detections each face is followed by template matching
      against its look at the last detection (~0.1 ms). The same face scores 0.83–1.0 (moving,
      changing expression: 0.87), another face ~0.7, the empty background ~0.25 and a black
      frame 0; below 0.6 the face is re-detected at once, so no crop of an empty chair or a
      black frame reaches the model.
    - ``refine_neighbors=3``: inside a patch searched only at the tracked face's size a false
      hit is rare, and 4 neighbours missed 3 % of JAFFE faces at 30 px against 0.6 % for 3.
    - ``roi_margin=0.4``: the re-detection patch is the face box plus 0.4 of its side on each
      side, so a head may move that far between two checks and still be followed.
    - ``stage="hybrid"``: the face stage streams use (``"haar"`` until the hybrid stage was
      measured: ≥ Haar's detection rate everywhere in ``benchmarks/face_stage.py``, 2.3–3.2×
      its CPU per face on a loaded machine, and ``crop_face`` on an alt2-like box, the framing
      the shipped model learnt; the demo's and the e2e test's alerts hold). ``"haar"``: Haar
      only, no attention. ``"landmarks"`` finds faces with BlazeFace and reads MediaPipe's face mesh on every frame (``engine.landmarks``: turned faces, head
      pose and eyes in ``FaceCrop.attention``, eye-aligned crops; ~20× the Haar stage's cost).
      ``"hybrid"`` (``engine.landmarks.hybrid``) finds faces with BlazeFace, follows them with
      templates like the Haar stage and reads the mesh once per ``attention_interval_s`` for the
      attention, the box and presence; its crops keep the Haar framing. ``detect()`` is Haar
      whatever the stage.
    - ``attention_interval_s=1.0`` (hybrid): the mesh reads each face once a second. The session
      samples at 1 Hz and its attention windows last 30–60 s, so a reading a second is what it
      uses; PERCLOS from readings at 1 Hz is unbiased (each reading is a random instant of its
      second), only noisier than at 5 Hz. Crops in between carry the last reading.
    - ``eyelid_interval_s=2.0`` (hybrid): the eyelid model (~1.1 ms an eye in LiteRT, about what
      the mesh costs; 3.2–3.7 ms in OpenCV's dnn, where this was set) reads a followed face's eyes
      at most every 2 s; the mesh reads in between keep the last openness. Measured with OpenCV's
      dnn on one face at 5 fps: the stage cost 1.08 ms a frame without the eyelid model and
      1.86–1.96 ms with it at every mesh read; eyes-closed alerts need 30 s of closure, so a
      reading ≤ 2 s old loses nothing the teacher is told.
    - ``aligned_crop=False`` (hybrid): ``True`` gives eye-aligned crops (the last mesh read's roll
      and scale moved with the template) instead of the Haar framing; the shipped model was
      trained and evaluated on the Haar framing, so this waits for a re-evaluation.
    """

    detect_width: int = 256
    scale_factor: float = 1.2
    min_neighbors: int = 4
    full_interval_s: float = 8.0
    search_interval_s: float = 1.0
    refine_interval_s: float = 1.0
    retry_interval_s: float = 0.4
    track_min_score: float = 0.6
    refine_neighbors: int = 3
    roi_margin: float = 0.4
    crop_margin: float = DEFAULT_MARGIN
    cascade: str = "haarcascade_frontalface_alt2.xml"
    tracker: TrackerSettings = field(default_factory=TrackerSettings)
    stage: Literal["haar", "landmarks", "hybrid"] = "hybrid"
    landmarks: LandmarkSettings = field(default_factory=LandmarkSettings)
    attention_interval_s: float = 1.0
    eyelid_interval_s: float = 2.0
    aligned_crop: bool = False

    def __post_init__(self) -> None:
        if self.detect_width < 32:
            raise ValueError(f"Expected detect_width >= 32 pixels. Received: {self.detect_width}")
        if self.scale_factor <= 1.0:
            raise ValueError(f"Expected scale_factor > 1. Received: {self.scale_factor}")
        if self.stage not in STAGES:
            raise ValueError(
                f"Expected stage 'haar', 'landmarks' or 'hybrid'. Received: {self.stage!r}"
            )
        for name in ("attention_interval_s", "eyelid_interval_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Expected {name} > 0 seconds. Received: {getattr(self, name)}")


class HaarSearch(Protocol):
    """What a Haar-based stream asks of its detector (``engine.faces.FaceDetector``)."""

    @property
    def settings(self) -> DetectorSettings: ...

    def detect(self, gray: np.ndarray) -> list[Box]: ...

    def refine(self, gray: np.ndarray, box: Box) -> list[Box]: ...
