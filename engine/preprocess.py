"""Face preprocessing: the one path from pixels to model input, shared by training and inference."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from engine.types import FACE_SIZE, Box

#: Fraction of the detector's box added on every side before cropping, chosen so a live crop is
#: framed like the FER2013 faces the model learns from: the live detector (Haar ``alt2``) run on
#: 1,000 FER2013 faces (upscaled 4×, on a padded canvas) finds a box whose side is 1.02 of the
#: face's frame (median; quartiles 0.96–1.10; 729 found). The old 0.2 made live crops 1.4× looser
#: than anything the model had seen; training jitters the framing by ±15 % around this.
DEFAULT_MARGIN = 0.01


def check_faces(faces: np.ndarray, *, ndim: int, name: str = "faces") -> None:
    """Raise ``ValueError`` unless ``faces`` is uint8 with ``ndim`` dims ending in 48×48."""
    expected_shape = "(N, 48, 48)" if ndim == 3 else "(N, T, 48, 48)"
    if not isinstance(faces, np.ndarray):
        raise ValueError(
            f"Expected `{name}` to be a numpy array of shape {expected_shape} and dtype uint8. "
            f"Received: {type(faces).__name__}"
        )
    if faces.dtype != np.uint8:
        raise ValueError(
            f"Expected `{name}` to have dtype uint8 (gray pixels 0–255). Received: dtype={faces.dtype}"
        )
    if faces.ndim != ndim or faces.shape[-2:] != (FACE_SIZE, FACE_SIZE):
        raise ValueError(
            f"Expected `{name}` to have shape {expected_shape}. Received: shape={faces.shape}"
        )


#: CLAHE of the ``equalize`` lever: 2×2 tiles (half a face each: a face lit from one side is the
#: webcam case), contrast limit 8. On 40 JAFFE faces at 48 px with the left half darkened to 30 %,
#: the halves' contrast ratio goes 0.30 → 0.76 while an evenly lit face stays close to itself
#: (pixel correlation 0.95); OpenCV's usual limit 2 does little at this size (0.49), 4×4 tiles
#: with limit 8 more (0.80) but change even faces more (0.89).
CLAHE_CLIP_LIMIT = 8.0
CLAHE_TILES = (2, 2)
_local = threading.local()  # OpenCV's CLAHE object keeps state: one per thread


def equalize_faces(faces: np.ndarray) -> np.ndarray:
    """uint8 ``(..., 48, 48)`` → the same faces after CLAHE (local histogram equalisation)."""
    clahe = getattr(_local, "clahe", None)
    if clahe is None:
        clahe = _local.clahe = cv2.createCLAHE(CLAHE_CLIP_LIMIT, CLAHE_TILES)
    flat = np.ascontiguousarray(faces).reshape(-1, FACE_SIZE, FACE_SIZE)
    out = np.empty_like(flat)
    for index, face in enumerate(flat):
        out[index] = clahe.apply(face)
    return out.reshape(faces.shape)


def preprocess_faces(faces: np.ndarray, *, equalize: bool = False) -> np.ndarray:
    """uint8 ``(..., 48, 48)`` gray faces → float32 ``(..., 48, 48, 1)`` model input.

    Each face is standardised on its own (zero mean, unit variance). This removes the global
    brightness and contrast of a webcam, which differ far more between classrooms than between
    FER2013 and JAFFE, and is what lets one model work across datasets. ``equalize``: CLAHE first
    (the recipe's ``equalize`` lever; a model trained with it records it and applies it itself).
    """
    if faces.dtype != np.uint8 or faces.shape[-2:] != (FACE_SIZE, FACE_SIZE):
        raise ValueError(
            "Expected uint8 faces of shape (..., 48, 48). "
            f"Received: dtype={faces.dtype}, shape={faces.shape}"
        )
    if equalize:
        faces = equalize_faces(faces)
    x = faces.astype(np.float32)
    mean = x.mean(axis=(-2, -1), keepdims=True)
    std = x.std(axis=(-2, -1), keepdims=True)
    x = (x - mean) / np.maximum(std, 8.0)  # a flat (black) crop stays near 0 instead of exploding
    return x[..., np.newaxis]


def crop_face(gray: np.ndarray, box: Box, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Cut ``box`` (+ ``margin`` on every side) out of a gray frame → uint8 (48, 48).

    The crop is squared on the longer side and clamped to the frame, then resized with area
    interpolation (the right filter for shrinking).
    """
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(
            f"Expected a 2-D uint8 gray frame. Received: dtype={gray.dtype}, shape={gray.shape}"
        )
    height, width = gray.shape
    side = max(box.width, box.height) * (1.0 + 2.0 * margin)
    cx = box.x + box.width / 2.0
    cy = box.y + box.height / 2.0
    x0 = round(max(0.0, cx - side / 2.0))
    y0 = round(max(0.0, cy - side / 2.0))
    x1 = round(min(float(width), cx + side / 2.0))
    y1 = round(min(float(height), cy + side / 2.0))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"Expected a box inside the {width}×{height} frame. Received: {box}")
    patch = gray[y0:y1, x0:x1]
    return cv2.resize(patch, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
