"""What a face stage gives for one frame, shared by the Haar and the landmark stages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.types import FaceCrop, PersonAbsent


@dataclass(frozen=True, slots=True)
class FrameFaces:
    """What one analysed frame of a source gave: crops of visible persons, persons just lost."""

    crops: tuple[FaceCrop, ...]
    absent: tuple[PersonAbsent, ...]


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
    if gray.size == 0:
        # Empty frames would divide by zero in the stages' scaling: refuse them by name instead.
        raise ValueError(
            f"Expected a gray frame with at least one pixel. Received: shape={gray.shape}"
        )
