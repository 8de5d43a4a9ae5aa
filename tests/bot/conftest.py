"""Fixtures for bot tests that need a real meeting: namespace, Janus, clips, Chromium.

Layering (all reusable by later bot tests, e.g. the session end-to-end test):

- ``netns`` (module): a fresh network namespace with 127.0.0.2 on a veth; the test thread is moved
  into it for the whole module (see ``harness/netns.py`` for why and how);
- ``janus_server`` (module): Janus in that namespace, VideoRoom 1234 + TextRoom 1234, WebSocket on
  ``ws://127.0.0.2:8188/``; ``janus_server.meeting_url()`` is the bot's URL; ``kill()``,
  ``start()``, ``restart()``, ``freeze()``/``thaw()`` for failure tests;
- ``student_clips`` (session): pre-encoded VP8 clips from JAFFE, by mood (``confused``,
  ``interested``, ``bored``) for :class:`~tests.bot.harness.participants.JanusParticipant`;
  ``h264_clip`` (session): the same kind of clip in H.264;
- ``chromium_y4m`` (session): a Y4M camera file for
  :class:`~tests.bot.harness.chromium.ChromiumStudent`; ``chromium_required`` checks the browser.

Missing parts (not root, no janus, no chromium, no JAFFE) fail under ``CI=true`` and skip
elsewhere, through ``tests.conftest.require``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bot.harness.chromium import chromium_binary
from tests.bot.harness.clips import (
    EncodedClip,
    encode_h264,
    encode_vp8,
    jaffe_faces,
    render_frames,
    write_y4m,
)
from tests.bot.harness.janus_server import JanusServer, janus_binary
from tests.bot.harness.netns import NetworkNamespace, missing_tools
from tests.conftest import require

#: Mood → (JAFFE subject, expressions shown in turn, one second each). Three different women so
#: that a face tracker cannot mix them up.
STUDENT_MOODS: dict[str, tuple[str, tuple[str, ...]]] = {
    "confused": ("KA", ("AN", "FE")),
    "interested": ("KM", ("HA", "NE")),
    "bored": ("KR", ("SA",)),
}
CLIP_SECONDS = 4
BROWSER_SUBJECT = ("YM", ("NE", "SU"))


def require_janus_stack() -> None:
    """Root, Linux namespaces tools and Janus; fails under CI=true, skips elsewhere."""
    require(sys.platform.startswith("linux"), "Janus tests need Linux network namespaces")
    require(os.geteuid() == 0, "Janus tests run as root (they create a network namespace)")
    missing = missing_tools()
    require(not missing, f"missing commands {missing} (util-linux, iproute2)")
    require(
        janus_binary() is not None, "janus is not installed (./dev.sh test installs Debian's janus)"
    )


@pytest.fixture(scope="module")
def netns() -> Iterator[NetworkNamespace]:
    require_janus_stack()
    namespace = NetworkNamespace().create()
    try:
        with namespace.entered():
            yield namespace
    finally:
        namespace.close()


@pytest.fixture(scope="module")
def janus_server(
    netns: NetworkNamespace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JanusServer]:
    server = JanusServer(netns, tmp_path_factory.mktemp("janus"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def student_clips(
    jaffe_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, EncodedClip]:
    folder = tmp_path_factory.mktemp("clips")
    clips = {}
    for mood, (subject, emotions) in STUDENT_MOODS.items():
        faces = jaffe_faces(jaffe_dir, subject, emotions)
        frames = render_frames(faces, CLIP_SECONDS * 15, seconds_per_face=1.0)
        clips[mood] = encode_vp8(frames, folder / f"{mood}.ivf")
    return clips


@pytest.fixture(scope="session")
def h264_clip(jaffe_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> EncodedClip:
    """An H.264 (constrained baseline) student clip, tint (40, 140, 60)."""
    subject, emotions = STUDENT_MOODS["interested"]
    frames = render_frames(
        jaffe_faces(jaffe_dir, subject, emotions), 30, seconds_per_face=1.0, tint=(40, 140, 60)
    )
    return encode_h264(frames, tmp_path_factory.mktemp("h264") / "student.h264")


@pytest.fixture(scope="session")
def chromium_y4m(jaffe_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    subject, emotions = BROWSER_SUBJECT
    frames = render_frames(
        jaffe_faces(jaffe_dir, subject, emotions), 30, seconds_per_face=1.0, tint=(110, 80, 60)
    )
    return write_y4m(frames, tmp_path_factory.mktemp("y4m") / "browser-student.y4m")


@pytest.fixture(scope="session")
def chromium_required() -> str:
    binary = chromium_binary()
    require(
        binary is not None, "chromium is not installed (./dev.sh test installs Debian's chromium)"
    )
    assert binary is not None
    return binary
