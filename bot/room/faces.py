"""Face video for simulated students: face photos on a schedule of expressions, as a camera track.

Material: a folder of face photos (JAFFE's ``SUBJECT.EXPRESSIONn.ID.tiff`` names and the
Taiwanese database's ``PPTVEnn.jpg`` names give subject and expression, so each student keeps one
face and changes expression on schedule), or, with no
folder, the portrait that ships with matplotlib (``grace_hopper.jpg`` in its sample data): one
face, no expression change, enough to show the class and the bot without any dataset. Nothing is
ever written to disk; the photos are read once per process.
"""

from __future__ import annotations

import asyncio
import fractions
import importlib.util
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np
from aiortc import VideoStreamTrack
from aiortc.mediastreams import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, MediaStreamError

from engine.datasets.taiwanese import TAIWANESE_CODES, TAIWANESE_NAME

IMAGE_SUFFIXES = (".tiff", ".tif", ".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".webp")
#: Canonical expression names (as in ``engine/data/mapping.json``) → JAFFE's two-letter codes.
JAFFE_CODES = {
    "angry": "AN",
    "disgust": "DI",
    "fear": "FE",
    "happy": "HA",
    "neutral": "NE",
    "sad": "SA",
    "surprise": "SU",
}
_JAFFE_NAME = re.compile(r"^([A-Z]{2})\.([A-Z]{2})\d*\.\d+$")
#: The default schedule: attentive, then a long confused stretch (long enough for an alert), then
#: attentive again.
DEFAULT_SCHEDULE: tuple[tuple[str, float], ...] = (
    ("neutral", 20.0),
    ("angry", 45.0),
    ("happy", 20.0),
)


@dataclass(frozen=True, slots=True)
class FacePhoto:
    """One face image (BGR, uint8) with what its file name says about it."""

    image: np.ndarray = field(repr=False, compare=False)
    #: Person the photo shows (``""`` when unknown).
    subject: str
    #: Canonical expression (``"happy"``), ``""`` when unknown.
    expression: str
    name: str


@dataclass(frozen=True, slots=True)
class ScheduledFace:
    """A face shown for ``seconds`` in a student's loop."""

    photo: FacePhoto
    seconds: float


def bundled_face_path() -> Path | None:
    """The portrait shipped in matplotlib's sample data, or ``None`` when it is not installed."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg"
    return path if path.is_file() else None


def load_face_photos(folder: Path | None = None, *, max_photos: int = 500) -> tuple[FacePhoto, ...]:
    """Face photos from ``folder`` (sorted by name), or the bundled portrait when ``None``.

    Raises ``FileNotFoundError`` naming the folder when it holds no readable image."""
    if folder is None:
        path = bundled_face_path()
        if path is None:
            raise FileNotFoundError(
                "Expected matplotlib's sample portrait (grace_hopper.jpg). "
                "Received: matplotlib not installed"
            )
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(
                f"Expected a readable image at {path}. Received: unreadable file"
            )
        return (FacePhoto(_crop_face(image), "grace-hopper", "", path.name),)
    folder = Path(folder)
    paths = (
        sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:max_photos]
        if folder.is_dir()
        else []
    )
    photos = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None or min(image.shape[:2]) < 24:
            continue
        match = _JAFFE_NAME.match(path.stem)
        taiwanese = TAIWANESE_NAME.match(path.name)
        if match:
            code = match.group(2)
            expression = next((name for name, c in JAFFE_CODES.items() if c == code), "")
            photos.append(FacePhoto(image, match.group(1), expression, path.name))
        elif taiwanese and taiwanese["code"] in TAIWANESE_CODES:
            expression = TAIWANESE_CODES[taiwanese["code"]]
            photos.append(FacePhoto(image, f"TW{taiwanese['performer']}", expression, path.name))
        else:
            photos.append(FacePhoto(image, "", "", path.name))
    if not photos:
        raise FileNotFoundError(
            f"Expected face images ({', '.join(IMAGE_SUFFIXES)}) in {folder}. "
            "Received: none readable"
        )
    return tuple(photos)


def student_schedule(
    photos: Sequence[FacePhoto],
    index: int,
    schedule: Sequence[tuple[str, float]] = DEFAULT_SCHEDULE,
) -> tuple[ScheduledFace, ...]:
    """What student number ``index`` shows: one subject per student (when names tell subjects),
    their photo for each expression of ``schedule`` in turn. Photos without expressions are
    shown in name order from an offset per student, for the schedule's phase durations."""
    if not photos:
        raise ValueError("Expected at least one face photo. Received: none")
    subjects = sorted({p.subject for p in photos if p.subject and p.expression})
    if subjects:
        subject = subjects[index % len(subjects)]
        own = [p for p in photos if p.subject == subject]
        plan = []
        seen: dict[str, int] = {}
        for expression, seconds in schedule:
            matching = [p for p in own if p.expression == expression] or own
            # The k-th phase of an expression shows the subject's next photo of it, so a long
            # designed phase can go through all of them.
            occurrence = seen[expression] = seen.get(expression, -1) + 1
            plan.append(
                ScheduledFace(matching[(index + occurrence) % len(matching)], float(seconds))
            )
        return tuple(plan)
    return tuple(
        ScheduledFace(photos[(index + step) % len(photos)], float(seconds))
        for step, (_, seconds) in enumerate(schedule)
    )


class FaceVideoTrack(VideoStreamTrack):
    """A camera showing ``faces`` in a loop: each face scaled to 3/4 of the frame height, on a
    plain background tinted per student, drifting a few pixels so that encoders and the face
    tracker see motion. ``expression`` tells what is shown now (tests and the demo print it)."""

    def __init__(
        self,
        faces: Sequence[ScheduledFace],
        *,
        width: int = 640,
        height: int = 360,
        tint: tuple[int, int, int] = (120, 90, 60),
        start_s: float = 0.0,
        fps: float = 15.0,
    ) -> None:
        super().__init__()
        self.fps = fps
        self._start_time: float | None = None
        self._timestamp = 0
        if not faces:
            raise ValueError("Expected at least one scheduled face. Received: none")
        self.faces = tuple(faces)
        self.width = width
        self.height = height
        self._scaled = [
            _fit(face.photo.image, int(height * 0.75), width - 32) for face in self.faces
        ]
        self._background = np.empty((height, width, 3), np.uint8)
        self._background[:] = tint
        self._period_s = sum(face.seconds for face in self.faces)
        self._offset_s = start_s
        self._elapsed_s = 0.0
        self.num_frames = 0

    def phase_at(self, seconds: float) -> int:
        """Index of the face shown ``seconds`` after the start."""
        position = (seconds + self._offset_s) % self._period_s if self._period_s > 0 else 0.0
        for index, face in enumerate(self.faces):
            if position < face.seconds:
                return index
            position -= face.seconds
        return len(self.faces) - 1

    @property
    def expression(self) -> str:
        return self.faces[self.phase_at(self._elapsed_s)].photo.expression

    def render(self, seconds: float) -> np.ndarray:
        """The BGR frame ``seconds`` after the start (pure: tests call it without a connection)."""
        face = self._scaled[self.phase_at(seconds)]
        frame = self._background.copy()
        face_height, face_width = face.shape[:2]
        phase = 2 * math.pi * seconds / 6.0
        x = (self.width - face_width) // 2 + int(12 * math.sin(phase))
        y = (self.height - face_height) // 2 + int(6 * math.sin(2 * phase))
        frame[y : y + face_height, x : x + face_width] = face
        return frame

    async def next_timestamp(self) -> tuple[int, fractions.Fraction]:
        """Paced at ``fps`` (a browser camera in the room sends 15 fps; aiortc's default is 30)."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start_time is None:
            self._start_time = time.time()
        else:
            self._timestamp += int(VIDEO_CLOCK_RATE / self.fps)
            wait = self._start_time + self._timestamp / VIDEO_CLOCK_RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        return self._timestamp, VIDEO_TIME_BASE

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        self._elapsed_s = float(pts * time_base)
        frame = av.VideoFrame.from_ndarray(self.render(self._elapsed_s), format="bgr24")
        frame.pts, frame.time_base = pts, time_base
        self.num_frames += 1
        return frame


def _fit(image: np.ndarray, max_height: int, max_width: int) -> np.ndarray:
    scale = min(max_height / image.shape[0], max_width / image.shape[1])
    size = (max(2, int(image.shape[1] * scale)), max(2, int(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def _crop_face(image: np.ndarray) -> np.ndarray:
    """A square around the largest face (OpenCV's Haar cascade) with room for hair and chin;
    the centre square when none is found."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    cascades = Path(cv2.__file__).parent / "data"  # cv2.data.haarcascades, which stubs lack
    cascade = cv2.CascadeClassifier(str(cascades / "haarcascade_frontalface_default.xml"))
    found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(48, 48))
    height, width = gray.shape
    if len(found):
        x, y, w, h = max(found, key=lambda box: box[2] * box[3])
        side = int(max(w, h) * 1.6)
        cx, cy = x + w // 2, y + h // 2
    else:
        side, cx, cy = min(height, width), width // 2, height // 2
    side = min(side, height, width)
    left = min(max(0, cx - side // 2), width - side)
    top = min(max(0, cy - side // 2), height - side)
    return image[top : top + side, left : left + side].copy()
