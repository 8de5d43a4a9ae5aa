"""Closed eyes on real photos: Taiwanese performers smiling or crying with their eyes shut, against
the same performers' neutral photos (never written anywhere; read from the datasets folder).

Names: performer, performance type, view, expression (a neutral, b happy, c sad, e disgusted),
serial. The shut-eyed ones were picked by looking at the photos, before any reading was taken
into account; the eyelid model reads them 0.024-0.079 here, the open ones 0.192-0.284; the face mesh's own
eye points read both alike (0.19-0.215 shut, 0.21-0.25 open: why the eyelid model is read).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.attention import AttentionWindow
from engine.faces import DetectorSettings, FaceDetector
from engine.landmarks import LandmarkStage
from tests.engine.clips import Appearance, render_frame

#: Eyes shut: smiling (10, 17) and crying or disgusted, squeezed (02, 03, 05).
SHUT = ("1031b13", "1031b01", "1731b16", "0231c01", "0331e03", "0511c15")
#: The same performers, neutral, eyes open.
OPEN = ("1001a02", "1701a02", "0201a09", "0301a02", "0501a02")
FPS = 5.0

pytestmark = pytest.mark.datasets


def photo(faces: Path, name: str) -> np.ndarray:
    image = cv2.imread(str(faces / f"{name}.jpg"), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise FileNotFoundError(
            f"Expected the Taiwanese photo {name}.jpg. Received: none in {faces}"
        )
    return image


def frame_of(image: np.ndarray, t: float = 0.0) -> np.ndarray:
    return render_frame(
        640, 360, t, [Appearance(image, 0.0, 1e9, size=0.9, motion=0.01)], np.random.default_rng(0)
    )


def test_shut_eyes_read_closed_and_open_eyes_open(taiwanese_faces: Path) -> None:
    stage = LandmarkStage()
    readings = {}
    for name in SHUT + OPEN:
        (face,) = stage.detect(frame_of(photo(taiwanese_faces, name)))
        readings[name] = face.attention
    assert all(not readings[name].eyes_open for name in SHUT), readings
    assert all(readings[name].eyes_open for name in OPEN), readings
    # Well apart, not just either side of the threshold.
    assert max(readings[n].eye_openness for n in SHUT) * 2 < min(
        readings[n].eye_openness for n in OPEN
    ), readings


def test_a_performer_shutting_her_eyes_reads_closed_within_seconds(taiwanese_faces: Path) -> None:
    """The hybrid stage (both modes' stage) on 3 s of performer 10's neutral photo, then 7 s of
    her smiling with shut eyes; its readings fed to the attention window the session keeps. The
    mesh reads the face once a second and the eyelid model at most every 2 s
    (``DetectorSettings.eyelid_interval_s``): the first shut reading comes within 3.4 s."""
    opened, shut = photo(taiwanese_faces, "1001a02"), photo(taiwanese_faces, "1031b13")
    appearances = [
        Appearance(opened, 0.0, 3.0, size=0.9, motion=0.01),
        Appearance(shut, 3.0, 10.0, size=0.9, motion=0.01),
    ]
    stream = FaceDetector(DetectorSettings(stage="hybrid")).stream("cam")
    window = AttentionWindow()
    rng = np.random.default_rng(0)
    readings = []
    for index in range(round(10.0 * FPS)):
        t = index / FPS
        for crop in stream.push(render_frame(640, 360, t, appearances, rng), t).crops:
            window.push(t, crop.attention)
            if crop.attention is not None:
                readings.append((t, crop.attention.eyes_open))
        if t < 3.0:
            assert window.eyes_closed_for(t) == 0.0, (t, readings)
    assert all(is_open for t, is_open in readings if t < 3.0), readings
    first_shut = min(t for t, is_open in readings if not is_open)
    assert 3.0 <= first_shut <= 3.0 + 2.0 + 1.0 + 0.4, readings
    assert all(not is_open for t, is_open in readings if t >= first_shut), readings
    end = 10.0 - 1 / FPS
    assert window.eyes_closed_for(end) >= end - first_shut - 1e-6
    perclos = window.perclos(end)
    assert perclos is not None and perclos > 0.3, readings
