"""The Janus connector against a real Janus that misbehaves: wrong rooms, garbage and unknown
messages (injected by a relay in front of Janus), a signalling path that goes silent, the room
being destroyed. Tests run in file order; the room is destroyed last.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from bot.meetings import (
    ChatReceived,
    ConnectionLost,
    ConnectionRestored,
    MeetingEnded,
    MeetingError,
    ParticipantJoined,
    ParticipantLeft,
    VideoTrackRemoved,
    parse_meeting_url,
)
from bot.meetings.janus import JanusConnector
from bot.meetings.janus_link import LinkSettings
from bot.meetings.janus_session import JanusSession
from bot.meetings.janus_subscriber import VideoRoomSubscriber
from engine.backoff import Backoff
from tests.bot.harness.clips import EncodedClip
from tests.bot.harness.janus_server import JanusServer
from tests.bot.harness.netns import NetworkNamespace
from tests.bot.harness.observer import BotObserver
from tests.bot.harness.participants import JanusParticipant
from tests.bot.harness.ws_proxy import JanusRelay

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.slow,
    pytest.mark.datasets,
    pytest.mark.timeout(120),
]

#: Quick to notice a silent server (aiohttp pings every 2 s, gives up after 1 s without pong).
FAST = LinkSettings(heartbeat_s=2.0, keepalive_s=10.0, request_timeout_s=3.0)


@dataclass
class RelayedClass:
    server: JanusServer
    relay: JanusRelay
    student: JanusParticipant
    bot: JanusConnector
    observer: BotObserver


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def relayed(
    netns: NetworkNamespace, janus_server: JanusServer, student_clips: dict[str, EncodedClip]
) -> AsyncIterator[RelayedClass]:
    relay = await JanusRelay(netns.address, janus_server.websocket_url).start()
    student = await JanusParticipant(
        janus_server.websocket_url, "Ana", clip=student_clips["confused"]
    ).start()
    bot = JanusConnector(
        parse_meeting_url(relay.meeting_url()),
        settings=FAST,
        backoff=Backoff(initial_s=0.2, max_s=1.0),
    )
    await bot.join()
    observer = BotObserver(bot).start()
    try:
        yield RelayedClass(janus_server, relay, student, bot, observer)
    finally:
        await bot.leave()
        await observer.stop()
        await student.stop()
        await relay.stop()


async def test_join_errors_name_the_problem(janus_server: JanusServer) -> None:
    address = janus_server.address
    cases = {
        f"janus+ws://{address}:{janus_server.port}/?room=999999&textroom=1234": "No such room",
        f"janus+ws://{address}:{janus_server.port}/?room=1234&textroom=424242": "424242",
        f"janus+ws://{address}:1/?room=1234": "cannot reach Janus",
    }
    for url, expected in cases.items():
        bot = JanusConnector(parse_meeting_url(url), settings=FAST)
        with pytest.raises(MeetingError, match=expected):
            await bot.join()
        assert bot.participants() == ()
        assert [event async for event in bot.events()] == []  # the stream ended, nothing half-made
        with pytest.raises(MeetingError, match="join\\(\\) once"):
            await bot.join()  # a failed connector stays failed: the caller makes a new one
        await bot.leave()


async def test_malformed_and_unknown_janus_messages_are_logged_and_survived(
    relayed: RelayedClass, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.meetings")
    observer, bot = relayed.observer, relayed.bot
    await observer.wait_for_frames(["Ana"], num_frames=5, timeout=15)
    since = len(observer.events)
    link = bot.link
    assert (
        link is not None
        and link.session is not None
        and link.member is not None
        and link.member.handle is not None
    )
    member, session_id = link.member.handle.id, link.session.id
    subscriber = (
        link.subscriber.handle.id
        if isinstance(link.subscriber, VideoRoomSubscriber) and link.subscriber.handle
        else member
    )

    def plugin_event(sender: int, data: object, **extra: object) -> str:
        return json.dumps(
            {
                "janus": "event",
                "session_id": session_id,
                "sender": sender,
                "plugindata": {"plugin": "janus.plugin.videoroom", "data": data},
                **extra,
            }
        )

    garbage: list[str | bytes] = [
        "not json {",
        b"\x00\x01binary",
        "[1, 2, 3]",
        '{"janus": 5}',
        '{"janus": "event"}',
        '{"janus": "surprise", "session_id": 1}',
        '{"janus": "success", "transaction": "nobody-asked"}',
        plugin_event(
            member,
            {"videoroom": "event", "publishers": "not a list", "unpublished": "x", "leaving": True},
        ),
        plugin_event(member, {"videoroom": "brand-new-event", "surprise": [1, {"a": None}]}),
        plugin_event(
            member,
            {
                "videoroom": "event",
                "publishers": [{"id": "nan"}, {"id": -1, "display": 5}, {"id": 0}],
            },
        ),
        plugin_event(member, {"videoroom": "event", "padding": "A" * 1_000_000}),
        plugin_event(subscriber, {"videoroom": "updated"}),
        plugin_event(subscriber, {"videoroom": "updated", "streams": "nope"}),
        plugin_event(member, "data is a string"),
        # A publisher whose only video is VP9: present, but not watched — with a log line.
        plugin_event(
            member,
            {
                "videoroom": "event",
                "publishers": [
                    {
                        "id": 77,
                        "display": "Vic VP9",
                        "streams": [{"type": "video", "mid": "0", "codec": "vp9"}],
                    }
                ],
            },
        ),
    ]
    for message in garbage:
        await relayed.relay.inject(message)
    vic = await observer.wait_for(
        ParticipantJoined, lambda e: e.participant.display_name == "Vic VP9", since=since
    )
    await relayed.relay.inject(plugin_event(member, {"videoroom": "event", "unpublished": 77}))
    await observer.wait_for(
        ParticipantLeft, lambda e: e.participant == vic.participant, since=since
    )

    # Still in the meeting on the same link: frames flow, chat works both ways.
    await observer.wait_for_frames(["Ana"], num_frames=10, timeout=10)
    await bot.send_chat("still here")
    await relayed.student.wait_for_line(lambda line: line.text == "still here")
    await relayed.student.say("me too")
    await observer.wait_for(ChatReceived, lambda e: e.text == "me too", since=since)
    assert not observer.of_type(ConnectionLost, since)
    assert bot.link is link and link.session.num_dropped_messages >= 4
    log = caplog.text
    assert "dropped a malformed Janus message" in log
    assert "video codec vp9 is not supported" in log


async def test_silent_signalling_is_noticed_and_the_bot_rejoins(relayed: RelayedClass) -> None:
    observer, since = relayed.observer, len(relayed.observer.events)
    await observer.wait_for_frames(["Ana"], num_frames=3, timeout=10)
    relayed.relay.cut()  # no answers, no pongs: a pulled cable as far as the bot can tell
    try:
        lost = await observer.wait_for(ConnectionLost, since=since, timeout=8)
    finally:
        relayed.relay.restore()
    assert lost.reason
    await observer.wait_for(
        VideoTrackRemoved, lambda e: e.participant.display_name == "Ana", since=since, timeout=5
    )
    await observer.wait_for(ConnectionRestored, since=since, timeout=10)
    await observer.wait_for_frames(["Ana"], num_frames=5, timeout=10)


async def test_room_destroyed_ends_the_meeting(relayed: RelayedClass) -> None:
    observer, since = relayed.observer, len(relayed.observer.events)
    admin = await JanusSession.connect(relayed.server.websocket_url)
    try:
        handle = await admin.attach("janus.plugin.videoroom")
        await handle.request({"request": "destroy", "room": 1234, "secret": "adminpwd"})
    finally:
        await admin.close()
    ended = await observer.wait_for(MeetingEnded, since=since, timeout=10)
    assert "destroyed" in ended.reason
    await observer.wait_for(
        ParticipantLeft, lambda e: e.participant.display_name == "Ana", since=since
    )
    assert observer.events[-1][1] == ended  # nothing after MeetingEnded; the stream is over
    assert relayed.bot.link is None
    relayed.server.restart()  # the room lives in the config file: back for whoever comes next
