"""Fakes for session tests: a meeting connector and a scoring hub implementing the real protocols.

Video is real: an aiortc ``VideoStreamTrack`` showing a JAFFE face, read through the real
``FrameSource``, detected by the real OpenCV detector. Only the meeting server and the model
are replaced, so a session test runs in seconds.
"""

from __future__ import annotations

import asyncio
import fractions
import itertools
from collections.abc import AsyncIterator, Callable

import av
import cv2
import numpy as np
from aiortc import VideoStreamTrack

from bot.meetings.frames import FrameSource
from bot.meetings.protocol import (
    ChatReceived,
    MeetingEvent,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    VideoTrackAdded,
)
from engine.types import Scores


class FaceTrack(VideoStreamTrack):
    """640×360 frames with ``face`` (gray, any size) pasted in the middle, 15 fps."""

    def __init__(self, face: np.ndarray | None) -> None:
        super().__init__()
        canvas = np.full((360, 640), 90, np.uint8)
        if face is not None:
            small = cv2.resize(face, (200, 200))
            canvas[80:280, 220:420] = small
        rgb = np.asarray(cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB), dtype=np.uint8)
        self._frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = self._frame.reformat(format="yuv420p")
        frame.pts, frame.time_base = pts, time_base or fractions.Fraction(1, 90000)
        return frame


class FakeConnector:
    """The ``MeetingConnector`` protocol over an in-memory queue; records every chat message."""

    display_name = "classpulse bot"

    def __init__(self) -> None:
        self._events: asyncio.Queue[MeetingEvent | None] = asyncio.Queue()
        self._present: dict[str, Participant] = {}
        self._ids = itertools.count(1)
        self.sent: list[tuple[str, str | None]] = []
        #: Every message with the id of its recipient (``None``: everyone).
        self.sent_to: list[tuple[str, str | None]] = []
        self.joined = self.left = False
        self.sources: list[FrameSource] = []

    async def join(self) -> None:
        self.joined = True

    async def leave(self) -> None:
        self.left = True
        for source in self.sources:
            await source.aclose()
        self._events.put_nowait(None)

    async def events(self) -> AsyncIterator[MeetingEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    async def send_chat(self, text: str, to: Participant | None = None) -> None:
        self.sent.append((text, to.display_name if to else None))
        self.sent_to.append((text, to.id if to else None))

    def participants(self) -> tuple[Participant, ...]:
        return tuple(self._present.values())

    # -- driving the fake meeting from a test --

    def arrive(
        self,
        name: str,
        face: np.ndarray | None = None,
        video: bool = True,
        *,
        is_host: bool = False,
    ) -> Participant:
        participant = Participant(str(next(self._ids)), name, is_host=is_host)
        self._present[participant.id] = participant
        self._events.put_nowait(ParticipantJoined(participant))
        if video:
            source = FrameSource(FaceTrack(face), name=name)
            self.sources.append(source)
            self._events.put_nowait(VideoTrackAdded(participant, source, "vp8"))
        return participant

    def depart(self, participant: Participant) -> None:
        self._present.pop(participant.id, None)
        self._events.put_nowait(ParticipantLeft(participant))

    def say(self, participant: Participant, text: str, whisper: bool = False) -> None:
        self._events.put_nowait(ChatReceived(participant, text, whisper, 0.0))

    def push(self, event: MeetingEvent) -> None:
        self._events.put_nowait(event)

    def whispers_to_participant(self, participant: Participant) -> list[str]:
        return [text for text, to in self.sent_to if to == participant.id]

    def whispers_to(self, name: str) -> list[str]:
        return [text for text, to in self.sent if to == name]

    def public(self) -> list[str]:
        return [text for text, to in self.sent if to is None]


class FakeScoringHub:
    """Scores each crop at once with the probabilities ``verdict(label)`` gives."""

    def __init__(self, verdict: Callable[[str], tuple[float, float, float]]) -> None:
        self.verdict = verdict
        self.handlers: dict[str, Callable[[str, Scores], None]] = {}
        self.submitted: list[str] = []
        #: (label, frame time) of every crop scored.
        self.scored: list[tuple[str, float]] = []
        self.forgotten: list[str] = []

    def register(self, key: str, handler: Callable[[str, Scores], None]) -> None:
        self.handlers[key] = handler

    def unregister(self, key: str) -> None:
        self.handlers.pop(key, None)

    def submit(self, key: str, label: str, t: float, crop: np.ndarray) -> None:
        assert crop.shape == (48, 48) and crop.dtype == np.uint8
        self.submitted.append(label)
        self.scored.append((label, t))
        p = self.verdict(label)
        handler = self.handlers.get(key)
        if handler is not None:
            asyncio.get_running_loop().call_soon(handler, label, Scores(label, t, *p))

    def forget(self, key: str, label: str) -> None:
        self.forgotten.append(label)
