"""The pure and small parts of the meeting connectors, without a server: names, roster, the event
stream's chat cap, backoff, Janus list parsing, and the newest-frame source on a real aiortc track.
"""

from __future__ import annotations

import asyncio
import logging

import av
import numpy as np
import pytest
from aiortc.rtcrtpreceiver import RemoteStreamTrack

from bot.meetings.events import EventStream
from bot.meetings.frames import FrameSource, FrameSourceClosedError
from bot.meetings.janus_videoroom import PublishedVideo, parse_publisher, parse_subscription
from bot.meetings.protocol import (
    MAX_CHAT_CHARS,
    MAX_DISPLAY_NAME_CHARS,
    ChatReceived,
    MeetingConnector,
    Participant,
    ParticipantJoined,
    check_chat_text,
    normalize_display_name,
)
from bot.meetings.roster import Roster
from engine.backoff import Backoff


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ana", "Ana"),
        ("  Ana \n  Lopez\t", "Ana Lopez"),
        ("Zoë\u202e\u0007 🎓\n名前", "Zoë 🎓 名前"),
        ("Zoe\u0308", "Zoë"),  # NFC: the same name typed two ways compares equal
        ("\u200b\u0000 \n", "anonymous"),
        (None, "anonymous"),
        (12, "anonymous"),
        ("Z" * 10_000, "Z" * (MAX_DISPLAY_NAME_CHARS - 1) + "…"),
    ],
)
def test_display_names_are_normalised(raw: object, expected: str) -> None:
    assert normalize_display_name(raw) == expected


def test_chat_text_limits() -> None:
    assert check_chat_text("hi") == "hi"
    for bad in ("", "   ", None):
        with pytest.raises(ValueError, match="non-empty"):
            check_chat_text(bad)
    with pytest.raises(ValueError, match=f"at most {MAX_CHAT_CHARS}"):
        check_chat_text("x" * (MAX_CHAT_CHARS + 1))


def test_roster_links_video_and_chat_by_name() -> None:
    roster = Roster()
    ana = roster.add_feed(11, "Ana").joined[0]
    assert roster.add_chat_user("u-ana", " Ana ").joined == ()  # same person: no second join
    assert roster.by_chat_user("u-ana") == ana == roster.by_feed(11)
    assert roster.chat_user_of(ana.id) == "u-ana" and roster.feed_of(ana.id) == 11
    assert roster.remove_feed(11).left == ()  # still in the chat
    assert roster.remove_chat_user("u-ana").left == (ana,)
    assert roster.participants() == ()


def test_roster_keeps_namesakes_apart_and_never_reuses_ids() -> None:
    roster = Roster()
    first = roster.add_feed(1, "Sam").joined[0]
    second = roster.add_feed(2, "Sam").joined[0]
    assert first.id != second.id
    roster.add_chat_user("a", "Sam")
    roster.add_chat_user("b", "Sam")
    assert {roster.chat_user_of(first.id), roster.chat_user_of(second.id)} == {"a", "b"}
    assert roster.add_feed(1, "Sam") == roster.add_feed(1, "other")  # known feed: no change
    gone = roster.clear().left
    assert set(gone) == {first, second} and roster.participants() == ()
    again = roster.add_feed(1, "Sam").joined[0]
    assert again.id not in {first.id, second.id}
    assert roster.remove_feed(999).left == () and roster.remove_chat_user("nobody").left == ()


def test_roster_names_the_nameless() -> None:
    roster = Roster()
    assert roster.add_feed(42, None).joined[0].display_name == "participant 42"
    assert roster.add_chat_user("u-7", "").joined[0].display_name == "u-7"


async def test_event_stream_drops_chat_in_a_flood_but_never_membership() -> None:
    stream = EventStream(max_pending_chat=3)
    who = Participant("p1", "Ana")
    for n in range(5):
        stream.put(ChatReceived(who, f"m{n}", False, 0.0))
    stream.put(ParticipantJoined(who))
    stream.end()
    received = [event async for event in stream]
    assert [getattr(e, "text", "joined") for e in received] == ["m0", "m1", "m2", "joined"]
    assert stream.num_dropped_chat == 2


def test_backoff_doubles_up_to_its_cap() -> None:
    schedule = Backoff(initial_s=0.25, max_s=2.0, jitter=0.0).delays()
    assert [next(schedule) for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]


def test_backoff_jitter_spreads_delays_within_its_bounds() -> None:
    schedule = Backoff(initial_s=1.0, max_s=1.0, jitter=0.2).delays()
    delays = [next(schedule) for _ in range(200)]
    assert all(0.8 <= delay <= 1.2 for delay in delays)
    assert max(delays) - min(delays) > 0.1  # not one fixed value: bots do not retry in lock-step


def test_backoff_refuses_a_cap_below_its_start() -> None:
    with pytest.raises(ValueError, match=r"Received: initial_s=2\.0, max_s=1\.0"):
        Backoff(initial_s=2.0, max_s=1.0)


def test_parse_publisher_picks_the_first_decodable_video(caplog: pytest.LogCaptureFixture) -> None:
    item = {
        "id": 5,
        "display": "Ana",
        "streams": [
            {"type": "audio", "mid": "0", "codec": "opus"},
            {"type": "video", "mid": "1", "codec": "vp8", "disabled": True},
            {"type": "video", "mid": "2", "codec": "H264", "simulcast": True},
            {"type": "video", "mid": "3", "codec": "vp8"},
        ],
    }
    assert parse_publisher(item).video == PublishedVideo(5, "2", "h264", simulcast=True)  # type: ignore[union-attr]
    with caplog.at_level(logging.WARNING):
        skipped = parse_publisher(
            {"id": 6, "display": "Vic", "streams": [{"type": "video", "mid": "0", "codec": "av1"}]}
        )
    assert skipped is not None and skipped.video is None
    assert "video codec av1 is not supported" in caplog.text
    bad: object
    for bad in (None, [], {"id": "7"}, {"id": True}, {"id": 0}, {"id": 8, "dummy": True}):
        assert parse_publisher(bad) is None
    assert parse_publisher({"id": 9, "display": 3, "streams": "x"}) == parse_publisher({"id": 9})


def test_parse_subscription_keeps_active_video_streams() -> None:
    streams = [
        {"type": "video", "mid": "0", "feed_id": 1, "codec": "vp8", "active": True},
        {"type": "video", "mid": "1", "active": False},
        {"type": "audio", "mid": "2", "feed_id": 1},
        {"type": "video", "mid": "3", "feed_id": 2, "codec": "h264", "simulcast": {"substream": 0}},
        {"type": "video", "mid": 4, "feed_id": 3},
        "junk",
    ]
    assert parse_subscription(streams) == {"0": (1, "vp8", False), "3": (2, "h264", True)}
    assert parse_subscription("nope") == {}


def _frame(value: int) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.full((36, 64, 3), value, np.uint8), format="rgb24")


async def test_frame_source_keeps_only_the_newest_frame_and_drains_the_track() -> None:
    track = RemoteStreamTrack(kind="video")
    source = FrameSource(track, name="test")
    for value in range(100):
        track._queue.put_nowait(_frame(value))
    await asyncio.sleep(0.05)
    assert (
        track._queue.qsize() == 0
    )  # aiortc's unbounded queue is emptied, whatever the consumer does
    newest = await source.next(timeout=2)
    assert newest.index == 100  # a slow consumer gets the newest frame, not the oldest
    assert int(newest.image.to_ndarray(format="rgb24")[0, 0, 0]) == 99
    assert source.num_received == 100 and source.num_skipped == 99
    assert source.latest() is newest
    with pytest.raises(TimeoutError):
        await source.next(timeout=0.05)  # nothing newer than what was returned

    waiter = asyncio.create_task(source.next())
    await asyncio.sleep(0.01)
    track._queue.put_nowait(_frame(7))
    assert (await waiter).index == 101
    await source.aclose()
    await source.aclose()
    with pytest.raises(FrameSourceClosedError):
        await source.next()
    assert track.readyState == "live"  # the connector owns the track, not the source


async def test_frame_source_ends_with_its_track() -> None:
    track = RemoteStreamTrack(kind="video")
    source = FrameSource(track, name="ending")
    track._queue.put_nowait(_frame(1))
    track._queue.put_nowait(None)  # aiortc's end-of-track marker
    frames = [frame async for frame in source]
    assert [f.index for f in frames] in ([1], [])
    assert source.closed
    with pytest.raises(FrameSourceClosedError, match="track ended"):
        await source.next()


def test_janus_connector_implements_the_protocol() -> None:
    from bot.meetings import connector_for

    connector = connector_for("janus+ws://127.0.0.1:8188/?room=1")
    assert isinstance(connector, MeetingConnector)
    assert connector.display_name == "classpulse bot"
