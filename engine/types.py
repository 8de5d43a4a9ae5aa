"""Values passed between the stages of the pipeline: small frozen dataclasses with units in names."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: The model's output classes, in the order of its softmax.
CLASSES: tuple[str, str, str] = ("interested", "bored", "confused")

#: Side length of the gray face crops the model reads.
FACE_SIZE = 48


class EngagementState(StrEnum):
    """A person's state as the product reports it: the model's three classes plus ``no_face``."""

    INTERESTED = "interested"
    BORED = "bored"
    CONFUSED = "confused"
    NO_FACE = "no_face"


@dataclass(frozen=True, slots=True)
class Box:
    """A face rectangle in pixels of the full-resolution frame."""

    x: int
    y: int
    width: int
    height: int

    @property
    def area(self) -> int:
        return self.width * self.height


@dataclass(frozen=True, slots=True)
class Scores:
    """Model probabilities for one person at one time ``t`` (seconds)."""

    person_id: str
    t: float
    interested: float
    bored: float
    confused: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.interested, self.bored, self.confused)
