"""Training-time changes to a 48×48 face: the framing the live tracker gives and what webcams do.

Framing (what makes a crop differ from frame to frame in a meeting): scale ±15 %, shift ±10 % of
the side, rotation ±10°, mirror. Camera (what differs between webcams and links): gamma, blur,
a lower resolution scaled back up, sensor noise and JPEG-like block artefacts (VP8 at low bitrate
looks much the same at 48×48). Each is drawn independently per face; one face costs ~60 µs.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentSettings:
    scale: float = 0.15
    shift: float = 0.10
    rotation_deg: float = 10.0
    flip: bool = True
    gamma: float = 0.4  # log-gamma drawn from ±this
    blur_p: float = 0.25
    low_resolution_p: float = 0.2
    noise_p: float = 0.3
    jpeg_p: float = 0.3


def jitter_framing(
    face: np.ndarray, rng: np.random.Generator, settings: AugmentSettings
) -> np.ndarray:
    side = face.shape[0]
    centre = ((side - 1) / 2.0, (side - 1) / 2.0)
    scale = rng.uniform(1.0 - settings.scale, 1.0 + settings.scale)
    angle = rng.uniform(-settings.rotation_deg, settings.rotation_deg)
    matrix = cv2.getRotationMatrix2D(centre, angle, scale)
    matrix[:, 2] += rng.uniform(-settings.shift, settings.shift, size=2) * side
    moved = cv2.warpAffine(face, matrix, (side, side), borderMode=cv2.BORDER_REPLICATE)
    if settings.flip and rng.random() < 0.5:
        moved = np.ascontiguousarray(moved[:, ::-1])
    return moved


def degrade(face: np.ndarray, rng: np.random.Generator, settings: AugmentSettings) -> np.ndarray:
    side = face.shape[0]
    out = face
    if settings.gamma:
        gamma = float(np.exp(rng.uniform(-settings.gamma, settings.gamma)))
        table = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma, 0, 255).astype(np.uint8)
        out = cv2.LUT(out, table)
    if rng.random() < settings.blur_p:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.0))
    if rng.random() < settings.low_resolution_p:
        small = int(rng.integers(20, 36))
        out = cv2.resize(out, (small, small), interpolation=cv2.INTER_AREA)
        out = cv2.resize(out, (side, side), interpolation=cv2.INTER_LINEAR)
    if rng.random() < settings.noise_p:
        noisy = out.astype(np.float32) + rng.normal(0.0, rng.uniform(2.0, 8.0), out.shape)
        out = np.clip(noisy, 0, 255).astype(np.uint8)
    if rng.random() < settings.jpeg_p:
        quality = int(rng.integers(25, 86))
        ok, encoded = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        decoded = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE) if ok else None
        if decoded is not None:
            out = np.asarray(decoded, np.uint8)
    return out


def augment_faces(
    faces: np.ndarray, rng: np.random.Generator, settings: AugmentSettings | None = None
) -> np.ndarray:
    """uint8 (N, 48, 48) → uint8 (N, 48, 48), each face re-framed and degraded at random."""
    settings = settings or AugmentSettings()
    out = np.empty_like(faces)
    for index, face in enumerate(faces):
        out[index] = degrade(jitter_framing(face, rng, settings), rng, settings)
    return out
