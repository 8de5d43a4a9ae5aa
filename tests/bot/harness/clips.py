"""Test clips made at test time from JAFFE faces (never stored in the repo).

A subject's face, scaled up, pasted into a 640×360 frame and drifting a little (so encoders and the
face tracker see motion), cycling through the chosen expressions. Two outputs:
- VP8 in IVF, encoded once with PyAV with a keyframe every second, read back as packets that an
  aiortc publisher sends as they are (no encoding per publisher: CPU stays with the bot);
- raw Y4M (``C420``) for Chromium's fake camera, which loops it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

WIDTH, HEIGHT, FPS = 640, 360, 15


@dataclass(frozen=True, slots=True)
class EncodedClip:
    """Encoded packets of a clip, in order; the first one is a keyframe."""

    packets: tuple[bytes, ...]
    keyframes: frozenset[int]
    fps: int
    width: int
    height: int
    #: ``"vp8"`` or ``"h264"`` (Annex B, SPS/PPS repeated before each keyframe).
    codec: str = "vp8"


def jaffe_faces(jaffe_dir: Path, subject: str, emotions: tuple[str, ...]) -> list[np.ndarray]:
    """Gray 256×256 faces of ``subject`` (``"KA"``) showing ``emotions`` (``("HA", "NE")``)."""
    faces = []
    for emotion in emotions:
        for path in sorted(jaffe_dir.glob(f"{subject}.{emotion}*.tiff")):
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is not None:
                faces.append(image)
    if not faces:
        raise FileNotFoundError(
            f"Expected JAFFE files {subject}.{{{','.join(emotions)}}}*.tiff in {jaffe_dir}. "
            "Received: none"
        )
    return faces


def render_frames(
    faces: list[np.ndarray],
    num_frames: int,
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
    seconds_per_face: float = 2.0,
    fps: int = FPS,
    tint: tuple[int, int, int] = (60, 90, 120),
    noise: float = 0.0,
) -> Iterator[np.ndarray]:
    """RGB frames: a tinted background, the face (height × 0.75) drifting by a few pixels;
    ``noise`` (standard deviation, 0–255 scale) adds camera-like grain, which costs bitrate."""
    side = int(height * 0.75)
    scaled = [cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC) for face in faces]
    background = np.empty((height, width, 3), np.uint8)
    background[:] = tint
    frames_per_face = max(1, int(seconds_per_face * fps))
    grain = np.random.default_rng(0)
    for index in range(num_frames):
        face = scaled[(index // frames_per_face) % len(scaled)]
        phase = 2 * math.pi * index / max(num_frames, 1)
        x = (width - side) // 2 + int(12 * math.sin(phase))
        y = (height - side) // 2 + int(6 * math.sin(2 * phase))
        frame = background.copy()
        frame[y : y + side, x : x + side] = face[:, :, None]
        if noise > 0:
            jitter = grain.normal(0.0, noise, frame.shape)
            frame = np.clip(frame + jitter, 0, 255).astype(np.uint8)
        yield frame


def gradients(count: int, size: tuple[int, int] = (72, 128)) -> Iterator[np.ndarray]:
    """``count`` small RGB frames of a red gradient that slides a little each frame: cheap to
    encode, and every frame differs from the last (real inter frames)."""
    height, width = size
    for index in range(count):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:, :, 0] = (np.arange(width) * 2 + index * 8) % 256
        yield frame


def encode_vp8(
    frames: Iterator[np.ndarray], path: Path, *, fps: int = FPS, bitrate: int = 400_000
) -> EncodedClip:
    """Encode RGB frames to VP8 (IVF) with a keyframe each second, and return its packets."""
    with av.open(str(path), mode="w", format="ivf") as container:
        stream = container.add_stream("libvpx", rate=fps)
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = bitrate
        stream.codec_context.gop_size = fps
        stream.options = {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",
            "auto-alt-ref": "0",
        }
        for index, rgb in enumerate(frames):
            if index == 0:
                stream.width, stream.height = rgb.shape[1], rgb.shape[0]
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return read_vp8(path, fps=fps)


def encode_h264(
    frames: Iterator[np.ndarray], path: Path, *, fps: int = FPS, bitrate: int = 400_000
) -> EncodedClip:
    """Encode RGB frames to constrained-baseline H.264 (what WebRTC peers all decode), a keyframe
    with SPS/PPS each second so that a subscriber joining late can start."""
    with av.open(str(path), mode="w", format="h264") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = bitrate
        stream.options = {
            "profile": "baseline",
            "preset": "ultrafast",
            "tune": "zerolatency",
            "x264-params": f"keyint={fps}:min-keyint={fps}:scenecut=0:bframes=0:repeat-headers=1",
        }
        for index, rgb in enumerate(frames):
            if index == 0:
                stream.width, stream.height = rgb.shape[1], rgb.shape[0]
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return read_vp8(path, fps=fps, codec="h264")


def read_vp8(path: Path, *, fps: int = FPS, codec: str = "vp8") -> EncodedClip:
    """Packets of a clip file (IVF for VP8; raw Annex B for ``codec="h264"``)."""
    packets: list[bytes] = []
    keyframes: set[int] = set()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.is_keyframe:
                keyframes.add(len(packets))
            packets.append(bytes(packet))
    if not packets or 0 not in keyframes:
        raise ValueError(
            f"Expected a {codec} clip starting with a keyframe in {path}. "
            f"Received: {len(packets)} packets"
        )
    return EncodedClip(tuple(packets), frozenset(keyframes), fps, width, height, codec)


def write_y4m(frames: Iterator[np.ndarray], path: Path, *, fps: int = FPS) -> Path:
    """Raw 4:2:0 Y4M (header ``C420``, as Chromium's file capture requires)."""
    with path.open("wb") as out:
        header_written = False
        for rgb in frames:
            height, width = rgb.shape[:2]
            if not header_written:
                out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420\n".encode())
                header_written = True
            yuv = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            out.write(b"FRAME\n")
            for plane_index, plane_height in ((0, height), (1, height // 2), (2, height // 2)):
                plane = yuv.planes[plane_index]
                plane_width = width if plane_index == 0 else width // 2
                data = np.frombuffer(memoryview(plane), np.uint8).reshape(
                    plane_height, plane.line_size
                )
                out.write(data[:, :plane_width].tobytes())
    return path
