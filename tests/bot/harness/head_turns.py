"""Simulated head turns and closed eyes on JAFFE photos (made at test time, never stored).

**Head turns: a cylinder warp, not a planar perspective warp.** The mesh infers a head's depth from
its look, so a flat photo tilted in perspective reads almost no yaw (measured on KM.NE: 9° at 45°,
~3° at 30°). Wrapping the photo around a vertical cylinder and turning that instead moves the nose
and eyes sideways while compressing the far cheek, as a real turn does. With the cylinder's radius
a quarter of the photo's width (about half the face's width), a fresh detection of a 55°-60° turn
reads 31°-55° on UY, NM, KL, KR, KM, MK, TM and NA (``NE`` photos), UY and NM the most; wider
cylinders read less (radius 0.42: 13°-32°). A face the stage *follows* (its mesh read in the
region its last mesh gives) reads less again: 25°-37° for UY and NM at 55°, so tests that need
``looking_away`` lower the yaw limit (default 30°) and say so.

**Closed eyes: a blink warp.** Each eye, located once by the face mesh on the open-eyed photo, is
covered by the skin above it pulled down over the eye (a vertical displacement that is the eye's
height times ``strength`` from well above the upper lid down to the lower lid, fading out just
below it and towards the eye corners), as an upper lid closing does. The mesh then reads an eye
aspect ratio of 0.234-0.245 against 0.298-0.322 open (UY, NM, KM, KR, YM): lower, but far above
the 0.15 closed threshold. Erasing the eyes outright (skin copied over them, feathered) or adding a
lash line reads 0.27-0.31: this mesh places its eye points by its prior when it sees no eye.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from engine.landmarks import LandmarkStage
from engine.landmarks.geometry import LEFT_EYE, RIGHT_EYE


def turn_head(face: np.ndarray, degrees: float, radius_share: float = 0.25) -> np.ndarray:
    """``face`` (gray, frontal, centred) turned ``degrees`` about a vertical cylinder of radius
    ``radius_share`` × its width (orthographic view); positive turns the face to the image's
    right. What leaves the cylinder is the photo's own border colour."""
    height, width = face.shape
    radius = width * radius_share
    xs = np.arange(width, dtype=np.float64) - width / 2
    on_cylinder = np.abs(xs) < radius
    angle = np.arcsin(np.clip(xs / radius, -1.0, 1.0)) - math.radians(degrees)
    visible = on_cylinder & (np.abs(angle) < math.pi / 2)
    source = np.where(visible, radius * np.sin(angle) + width / 2, xs + width / 2)
    map_x = np.tile(source.astype(np.float32), (height, 1))
    map_y = np.tile(np.arange(height, dtype=np.float32)[:, None], (1, width))
    return cv2.remap(face, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def eye_contours(face: np.ndarray, stage: LandmarkStage) -> list[np.ndarray]:
    """Both eyes' six-point contours (x, y) from the mesh on the open-eyed photo."""
    found = stage.detect(face)
    if len(found) != 1:
        raise ValueError(f"Expected one face in the photo. Received: {len(found)}")
    return [found[0].points[list(eye), :2] for eye in (RIGHT_EYE, LEFT_EYE)]


def close_eyes(face: np.ndarray, eyes: list[np.ndarray], strength: float = 2.5) -> np.ndarray:
    """``face`` with each eye of ``eyes`` (from ``eye_contours``) covered by the lid skin above it."""
    height, width = face.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    map_y = ys.copy()
    for contour in eyes:
        outer, inner = contour[0], contour[3]
        upper = float((contour[1][1] + contour[2][1]) / 2)
        lower = float((contour[4][1] + contour[5][1]) / 2)
        centre_x = float(outer[0] + inner[0]) / 2
        half_width = abs(float(inner[0] - outer[0])) / 2
        shift = (lower - upper) * strength
        across = np.exp(-0.5 * ((xs - centre_x) / (0.9 * half_width)) ** 4)
        top = upper - 3 * shift
        down = np.where(
            ys <= lower,
            np.clip((ys - top) / (upper - top), 0.0, 1.0),
            np.clip(1.0 - (ys - lower) / (0.3 * shift + 1e-6), 0.0, 1.0),
        )
        map_y -= shift * across * down
    return cv2.remap(face, xs, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
