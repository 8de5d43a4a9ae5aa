"""Face tracking: stable person numbers for the faces of one video source, by IoU."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.types import Box


@dataclass(frozen=True)
class TrackerSettings:
    """How faces of one source become persons.

    - ``match_iou=0.3``: two Haar boxes of the same face a few hundred milliseconds apart overlap
      by 0.5–0.9; 0.3 still follows a head moving a third of its width between two checks, while
      two people side by side (IoU 0) never swap.
    - ``lost_after_s=1.5``: Haar misses a visible face now and then (a turned head, motion blur,
      a hand); 1.5 s is several missed checks, short enough that a student who left shows as
      ``no_face`` quickly.
    - ``reacquire_distance=1.5``: a new face whose centre is within 1.5 face widths of where a lost
      person was last seen is that person back (leaning out of view and returning).
    - ``max_lost=8``: lost persons remembered for that; bounds memory on a busy classroom camera.
    - ``initial_persons=1``: persons that exist before any face is seen, so a camera pointed away
      from the start is reported as ``no_face`` instead of not at all.
    """

    match_iou: float = 0.3
    lost_after_s: float = 1.5
    reacquire_distance: float = 1.5
    max_lost: int = 8
    initial_persons: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.match_iou < 1.0:
            raise ValueError(f"Expected 0 < match_iou < 1. Received: {self.match_iou}")
        if self.lost_after_s <= 0:
            raise ValueError(f"Expected lost_after_s > 0. Received: {self.lost_after_s}")
        if self.max_lost < 0 or self.initial_persons < 0:
            raise ValueError(
                "Expected max_lost >= 0 and initial_persons >= 0. "
                f"Received: max_lost={self.max_lost}, initial_persons={self.initial_persons}"
            )


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not touch)."""
    width = min(a.x + a.width, b.x + b.width) - max(a.x, b.x)
    height = min(a.y + a.height, b.y + b.height) - max(a.y, b.y)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / float(a.area + b.area - inter)


def _centre_distance(a: Box, b: Box) -> float:
    dx = (a.x + a.width / 2) - (b.x + b.width / 2)
    dy = (a.y + a.height / 2) - (b.y + b.height / 2)
    return float((dx * dx + dy * dy) ** 0.5)


@dataclass
class _Track:
    index: int
    #: Last box seen; ``None`` for a person whose face was never seen.
    box: Box | None
    #: When the face was last seen, or when the track was created for a never-seen person.
    since_t: float | None
    ever_seen: bool = False
    #: The latest check of this person found the face.
    seen_now: bool = False
    lost: bool = False


@dataclass(frozen=True, slots=True)
class TrackerUpdate:
    """What one check changed: persons visible now and persons declared lost at this check."""

    #: (person number, box) for every person whose face the latest check of it found.
    visible: tuple[tuple[int, Box], ...]
    #: (person number, last time seen or ``None``) for persons lost at this update.
    lost: tuple[tuple[int, float | None], ...]


class FaceTracker:
    """Greedy IoU tracker for one video source; person numbers start at 1 and are never reused.

    A check is either a full-frame detection (``scope=None``: every face in the frame) or a
    re-detection around some tracked faces (``scope``: their numbers; new faces are left to the
    next full detection). Tracks not seen for ``lost_after_s`` are lost; a lost person's number
    comes back when a face reappears near where it was last seen, or anywhere when that person
    was the only one of the source.
    """

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._tracks: list[_Track] = [
            _Track(index, None, None) for index in range(1, self.settings.initial_persons + 1)
        ]
        self._next_index = self.settings.initial_persons + 1

    @property
    def num_active(self) -> int:
        """Persons whose face was seen within ``lost_after_s``."""
        return sum(1 for track in self._tracks if track.ever_seen and not track.lost)

    def active(self) -> list[tuple[int, Box]]:
        """(number, last box) of every person not lost, seen now or missed for a short while."""
        return [
            (track.index, track.box)
            for track in self._tracks
            if track.box is not None and track.ever_seen and not track.lost
        ]

    def visible(self) -> list[tuple[int, Box]]:
        """(number, box) of every person whose latest check found the face."""
        return [
            (track.index, track.box)
            for track in self._tracks
            if track.box is not None and track.seen_now and not track.lost
        ]

    def update(
        self, t: float, boxes: Sequence[Box], scope: Sequence[int] | None = None
    ) -> TrackerUpdate:
        """Match ``boxes`` found at ``t`` seconds; ``scope`` limits the check to some persons."""
        for track in self._tracks:
            if track.since_t is None:
                track.since_t = t  # the clock of a never-seen person starts at the first check
        in_scope = [
            track
            for track in self._tracks
            if track.ever_seen and not track.lost and (scope is None or track.index in scope)
        ]
        matched_boxes = self._match(in_scope, boxes, t)
        if scope is None:
            taken = [box for i, box in enumerate(boxes) if i in matched_boxes]
            for i, box in enumerate(boxes):
                if i in matched_boxes or any(iou(box, other) > 0.2 for other in taken):
                    continue  # a second box on a face already followed is not a new person
                self._place(box, t)
                taken.append(box)
        return TrackerUpdate(tuple(self.visible()), tuple(self._expire(t)))

    def tick(self, t: float) -> TrackerUpdate:
        """Advance the clock without a check: only expires persons not seen for too long."""
        return self.update(t, (), scope=())

    def _match(self, tracks: list[_Track], boxes: Sequence[Box], t: float) -> set[int]:
        pairs = sorted(
            (
                (iou(track.box, box), n, i)
                for n, track in enumerate(tracks)
                if track.box is not None
                for i, box in enumerate(boxes)
            ),
            reverse=True,
        )
        used_tracks: set[int] = set()
        used_boxes: set[int] = set()
        for overlap, n, i in pairs:
            if overlap < self.settings.match_iou:
                break
            if n in used_tracks or i in used_boxes:
                continue
            used_tracks.add(n)
            used_boxes.add(i)
            self._see(tracks[n], boxes[i], t)
        for n, track in enumerate(tracks):
            if n not in used_tracks:
                track.seen_now = False
        return used_boxes

    def _place(self, box: Box, t: float) -> None:
        """A face nobody followed explains: a lost person back, a never-seen one, or a new one."""
        waiting = [track for track in self._tracks if track.lost or not track.ever_seen]
        near = [
            (_centre_distance(track.box, box), track)
            for track in waiting
            if track.box is not None
            and _centre_distance(track.box, box)
            <= self.settings.reacquire_distance * max(track.box.width, box.width)
        ]
        if near:
            track = min(near, key=lambda pair: pair[0])[1]
        elif unseen := [track for track in waiting if not track.ever_seen]:
            track = unseen[0]
        elif len(waiting) == 1 and self.num_active == 0 and self._next_index == 2:
            track = waiting[0]  # the only person this source ever had: the same student back
        else:
            track = _Track(self._next_index, None, t)
            self._next_index += 1
            self._tracks.append(track)
        track.lost = False
        self._see(track, box, t)

    @staticmethod
    def _see(track: _Track, box: Box, t: float) -> None:
        track.box = box
        track.since_t = t
        track.ever_seen = True
        track.seen_now = True

    def _expire(self, t: float) -> list[tuple[int, float | None]]:
        lost: list[tuple[int, float | None]] = []
        for track in self._tracks:
            if track.lost or track.since_t is None:
                continue
            if t - track.since_t >= self.settings.lost_after_s:
                track.lost = True
                track.seen_now = False
                lost.append((track.index, track.since_t if track.ever_seen else None))
        # Forget the oldest lost persons beyond max_lost (never-seen ones count as lost).
        waiting = [track for track in self._tracks if track.lost]
        for track in sorted(waiting, key=lambda tr: tr.since_t or 0.0)[
            : max(0, len(waiting) - self.settings.max_lost)
        ]:
            self._tracks.remove(track)
        return lost
