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


def due(last_t: float | None, t: float, interval_s: float) -> bool:
    """Whether a pass made every ``interval_s`` seconds is due at ``t`` after one at ``last_t``
    (never made: due; a clock that went back: due). Compared with 1 ms of slack, because in
    floating point 1.2 - 0.8 < 0.4."""
    return last_t is None or t < last_t or t - last_t >= interval_s - 1e-3


def full_pass_interval(
    num_active: int, num_visible: int, *, full_s: float, search_s: float, retry_s: float
) -> float:
    """How often a stream searches the whole frame: every ``search_s`` while nobody is followed,
    every ``retry_s`` while a followed face is missing, else every ``full_s`` (new faces)."""
    if not num_active:
        return search_s
    return retry_s if num_visible < num_active else full_s
