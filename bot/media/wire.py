"""What a media worker and the bot's parent process say to each other, and how it is framed.

Messages are small frozen dataclasses, pickled and sent with a 4-byte length over a Unix socket
pair (both ends are our own processes: pickle is safe here). Crops travel as uint8 48×48 arrays:
about 2.4 KB a face, instead of a decoded frame (345 KB at 640×360).
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from dataclasses import dataclass

from bot.meetings.janus_videoroom import PublishedVideo
from bot.meetings.remote_video import AnalysedFrame
from engine.types import reduce_by_fields

#: Refuse a frame longer than this: a corrupt length must not make the reader allocate gigabytes.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_LENGTH = struct.Struct("!I")


# -- parent → worker ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenLink:
    """Connect to Janus and be ready to subscribe for one meeting link of the parent."""

    link_id: int
    websocket_url: str
    room: int
    pin: str | None
    api_secret: str | None
    token: str | None
    private_id: int | None


@dataclass(frozen=True, slots=True)
class Subscribe:
    link_id: int
    videos: tuple[PublishedVideo, ...]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    link_id: int
    feed_id: int


@dataclass(frozen=True, slots=True)
class Analyse:
    """Start (``fps`` > 0) or stop (``fps`` None) analysing one feed; ``name`` labels its logs;
    ``stage`` is the face stage (``engine.faces.DetectorSettings.stage``; ``bot.session.settings.
    FACE_STAGES`` says which each mode runs)."""

    link_id: int
    feed_id: int
    name: str
    fps: float | None
    stage: str = "hybrid"


@dataclass(frozen=True, slots=True)
class CloseLink:
    link_id: int


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Close every link and exit."""


# -- worker → parent ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerReady:
    pid: int
    #: Must be False: TensorFlow beside aiortc/pylibsrtp segfaults (tests check it).
    tensorflow_loaded: bool


@dataclass(frozen=True, slots=True)
class VideoUp:
    """A subscribed feed's video track exists in the worker (frames will follow)."""

    link_id: int
    feed_id: int
    codec: str


@dataclass(frozen=True, slots=True)
class VideoDown:
    link_id: int
    feed_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class FacesFound:
    """One analysed frame of one feed: the faces in it and the persons lost by then."""

    __reduce__ = reduce_by_fields

    link_id: int
    feed_id: int
    frame: AnalysedFrame


@dataclass(frozen=True, slots=True)
class LinkFailed:
    """The worker lost its Janus connection for a link (Janus down, subscriber hung up)."""

    link_id: int
    reason: str


ToWorker = OpenLink | Subscribe | Unsubscribe | Analyse | CloseLink | Shutdown
ToParent = WorkerReady | VideoUp | VideoDown | FacesFound | LinkFailed


def encode(message: ToWorker | ToParent) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)) + body


async def read_message(reader: asyncio.StreamReader) -> ToWorker | ToParent:
    """The next message; ``asyncio.IncompleteReadError`` when the other end is gone."""
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    if length > MAX_MESSAGE_BYTES:
        raise ValueError(
            f"Expected a media message of at most {MAX_MESSAGE_BYTES} bytes. Received: {length}"
        )
    message: ToWorker | ToParent = pickle.loads(await reader.readexactly(length))
    return message
