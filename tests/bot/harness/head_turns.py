"""Simulated head turns on JAFFE photos (made at test time, never stored).

**Head turns: a cylinder warp, not a planar perspective warp.** The mesh infers a head's depth from
its look, so a flat photo tilted in perspective reads almost no yaw (measured on KM.NE: 9° at 45°,
~3° at 30°). Wrapping the photo around a vertical cylinder and turning that instead moves the nose
and eyes sideways while compressing the far cheek, as a real turn does. With the cylinder's radius
a quarter of the photo's width (about half the face's width), a fresh detection of a 55°-60° turn
reads 31°-55° on UY, NM, KL, KR, KM, MK, TM and NA (``NE`` photos), UY and NM the most; wider
cylinders read less (radius 0.42: 13°-32°). A face the stage *follows* (its mesh read in the
region its last mesh gives) reads less again: 25°-37° for UY and NM at 55°, so tests that need
``looking_away`` lower the yaw limit (default 30°) and say so.

**Closed eyes are not simulated.** Warping a lid over an open eye fooled the face mesh's own eye
points (0.23-0.25 against 0.31 open) and half-fooled the eyelid model; the tests use real shut
eyes instead: Taiwanese photos of performers smiling or crying with their eyes shut
(``tests/engine/test_eyes_closed.py``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np


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
