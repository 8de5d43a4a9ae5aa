"""Test videos made at test time: JAFFE faces pasted into frames with motion and noise, via PyAV.

Nothing here is written into the repository: clips go to a temporary folder, faces are read from
the shared datasets folder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import av
import cv2
import numpy as np
from av.video.stream import VideoStream


def jaffe_face(jaffe_dir: Path, subject: str, emotion: str, take: int = 1) -> np.ndarray:
    """Gray uint8 (256, 256) JAFFE image of ``subject`` (``"KA"``) with ``emotion`` (``"HA"``)."""
    matches = sorted(jaffe_dir.glob(f"{subject}.{emotion}{take}.*.tiff"))
    if not matches:
        raise FileNotFoundError(
            f"Expected a JAFFE file {subject}.{emotion}{take}.*.tiff. Received: none in {jaffe_dir}"
        )
    image = cv2.imread(str(matches[0]), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"Expected a readable TIFF. Received: {matches[0]}")
    return image


@dataclass(frozen=True)
class Appearance:
    """A face shown from ``start_s`` to ``end_s``, centred at (cx, cy) (fractions of the frame)."""

    face: np.ndarray
    start_s: float
    end_s: float
    cx: float = 0.5
    cy: float = 0.5
    #: Side of the pasted face image as a fraction of the frame height.
    size: float = 0.6
    #: Amplitude of the slow wobble, in fractions of the face side.
    motion: float = 0.03


def render_frame(
    width: int,
    height: int,
    t: float,
    appearances: Sequence[Appearance],
    rng: np.random.Generator,
    black: bool = False,
    noise: int = 4,
) -> np.ndarray:
    """One gray frame at ``t`` seconds: a soft background, the faces visible at ``t``, noise."""
    if black:
        return np.zeros((height, width), np.uint8)
    x = np.linspace(70, 120, width, dtype=np.float32)
    y = np.linspace(0, 20, height, dtype=np.float32)[:, None]
    frame = x[None, :] + y
    for index, face in enumerate(appearances):
        if not face.start_s <= t < face.end_s:
            continue
        side = max(2, round(face.size * height))
        image = cv2.resize(face.face, (side, side), interpolation=cv2.INTER_AREA)
        wobble = face.motion * side
        cx = face.cx * width + wobble * math.sin(1.3 * t + index)
        cy = face.cy * height + wobble * math.cos(0.9 * t + index)
        x0, y0 = round(cx - side / 2), round(cy - side / 2)
        fx0, fy0 = max(0, -x0), max(0, -y0)
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(width, x0 + side - fx0), min(height, y0 + side - fy0)
        frame[y0:y1, x0:x1] = image[fy0 : fy0 + (y1 - y0), fx0 : fx0 + (x1 - x0)]
    if noise:
        frame += rng.integers(-noise, noise + 1, frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)


def make_clip(
    path: Path,
    appearances: Sequence[Appearance],
    duration_s: float,
    *,
    width: int = 640,
    height: int = 360,
    fps: int = 15,
    codec: str = "libvpx",
    black: Sequence[tuple[float, float]] = (),
    seed: int = 0,
    bit_rate: int = 600_000,
) -> Path:
    """Encode a clip; ``black`` lists (start_s, end_s) stretches of all-black frames."""
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as container:
        stream = cast(VideoStream, container.add_stream(codec, rate=fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = bit_rate
        if codec == "libvpx":
            stream.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        for index in range(round(duration_s * fps)):
            t = index / fps
            dark = any(start <= t < end for start, end in black)
            gray = render_frame(width, height, t, appearances, rng, black=dark)
            frame = av.VideoFrame.from_ndarray(gray, format="gray").reformat(format="yuv420p")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
