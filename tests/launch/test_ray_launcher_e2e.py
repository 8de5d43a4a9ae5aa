"""Two classes on a Ray cluster: ``classpulse serve --launcher ray``, every part real.

In one network namespace: two Janus servers (one class each, aiortc students publishing JAFFE
clips, a teacher in the chat), a Ray cluster of a head and one worker node started by the test
(one CPU each, one CPU per class: the two bots must land on two nodes), PostgreSQL (unix socket),
and a real ``classpulse serve --launcher ray --ray-address …`` subprocess whose REST API, live
stream and ``/metrics`` the test reads. Each bot is a detached Ray actor with its own inference
process (the shipped weights, TensorFlow on CPU).

The chapters run in file order as one lesson: both classes start and are analysed on two nodes;
each teacher claims and gets the confusion alert about their own confused student only; rows of
both land in the one PostgreSQL; class A's actor is killed with ``ray.kill(actor,
no_restart=False)`` mid-class, Ray restarts it, the same stored meeting goes on with the gap
recorded (and no hole in any student's samples outside it), the teacher is asked to claim again
and gets alerts again; the server is killed (SIGKILL) and a new one on the same cluster and
database adopts both running actors; ``DELETE /api/bots/{id}`` through it stops each actor for
good. Class A's bot is invited with a webhook: its receiver sees the restart
(``bot.in_meeting``, code ``restarted``) and, from the adopting server, ``bot.ended``.

Clips are chosen by designed expression (KA's anger, disgust and fear photos; KM's smiles;
YM's sad ones), as in ``tests/bot/test_bot_e2e.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import select

from bot.launch import ray_installed
from bot.launch.spec import RESTART_GAP_KIND
from bot.session import NOTICE, RECLAIM
from bot.web.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from storage import Storage
from storage import models as tables
from tests.bot.harness.clips import FPS, EncodedClip, encode_vp8, jaffe_faces, render_frames
from tests.bot.harness.janus_server import JanusServer
from tests.bot.harness.netns import NetworkNamespace
from tests.bot.harness.participants import JanusParticipant
from tests.conftest import require
from tests.launch.ray_cluster import RayCluster, ServerProcess
from tests.launch.school import (
    Class,
    School,
    alerted,
    alerts,
    bot_username,
    claim,
    follow_live,
    samples_of,
    stored_samples,
    until,
    webhook_receiver,
)
from tests.storage.conftest import PostgresServer

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.slow,
    pytest.mark.datasets,
    pytest.mark.timeout(420),
]

#: Class → (Janus port, teacher, {student: (JAFFE subject, expressions)}); the first student of
#: each class is the confused one.
CLASSES: dict[str, tuple[int, str, dict[str, tuple[str, tuple[str, ...]]]]] = {
    "A": (8188, "Ms Abe", {"Kana": ("KA", ("AN", "DI", "FE")), "Miki": ("KM", ("HA",))}),
    "B": (8189, "Mr Bo", {"Kaori": ("KA", ("AN", "DI", "FE")), "Rei": ("YM", ("SA",))}),
}
OPTIONS = {"alert_after_s": 5.0, "alert_cooldown_s": 600}
#: TensorFlow loading in each actor's inference process on a busy 2-core machine, Janus
#: negotiation, the window filling, the state held ``alert_after_s``.
START_TIMEOUT_S = 150.0
ALERT_TIMEOUT_S = 90.0


@pytest.fixture(scope="module")
def ray_required() -> None:
    require(ray_installed(), "ray is not installed (./dev.sh test installs classpulse[ray])")


@pytest.fixture(scope="module")
def database(postgres_server: PostgresServer) -> Iterator[str]:
    with postgres_server.admin() as admin:
        admin.execute("DROP DATABASE IF EXISTS launch")
        admin.execute("CREATE DATABASE launch")
    yield postgres_server.url("launch")


@pytest.fixture(scope="module")
def clips(jaffe_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, EncodedClip]:
    folder = tmp_path_factory.mktemp("launch-clips")
    made = {}
    for _, _, students in CLASSES.values():
        for name, (subject, expressions) in students.items():
            faces = jaffe_faces(jaffe_dir, subject, expressions)
            frames = render_frames(faces, len(faces) * FPS, seconds_per_face=1.0)
            made[name] = encode_vp8(frames, folder / f"{name}.ivf")
    return made


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def school(
    ray_required: None,
    netns: NetworkNamespace,
    database: str,
    clips: dict[str, EncodedClip],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[School]:
    folder = tmp_path_factory.mktemp("launch")
    async with contextlib.AsyncExitStack() as stack:
        cluster = RayCluster(netns, folder)
        stack.callback(cluster.stop)
        started = time.monotonic()
        await asyncio.to_thread(cluster.start)  # the thread is only waited on, it opens nothing
        print(f"ray: head + worker node up in {time.monotonic() - started:.1f} s")
        server = ServerProcess(netns, cluster, database, folder)
        stack.callback(server.stop)
        await asyncio.to_thread(server.start)
        storage = Storage.open(database, upgrade=False)
        stack.callback(storage.close)
        http = aiohttp.ClientSession()
        stack.push_async_callback(http.close)
        receiver = await stack.enter_async_context(webhook_receiver())
        classes = {}
        for name, (port, teacher_name, students) in CLASSES.items():
            janus = JanusServer(netns, folder / f"janus-{name}", port=port)
            janus.start()
            stack.callback(janus.stop)
            members = {}
            for student in students:
                members[student] = JanusParticipant(
                    janus.websocket_url, student, clip=clips[student], chat=True
                )
                stack.push_async_callback(members[student].stop)
                await members[student].start()
            teacher = JanusParticipant(janus.websocket_url, teacher_name, chat=True)
            stack.push_async_callback(teacher.stop)
            await teacher.start()
            classes[name] = Class(name, janus, teacher, members)

        def new_server(name: str) -> ServerProcess:
            (folder / name).mkdir()
            made = ServerProcess(netns, cluster, database, folder / name)
            stack.callback(made.stop)
            return made

        school = School(cluster, server, storage, http, classes, receiver, new_server)
        yield school
        for room in classes.values():
            if room.stream is not None:
                room.stream.cancel()
        print(f"ray cluster memory by process kind (MB): {cluster.memory_mb()}")


async def test_two_classes_run_as_actors_on_two_nodes(school: School) -> None:
    started = time.monotonic()
    for room in school.classes.values():
        teacher = CLASSES[room.name][1]
        invite = {"meeting_url": room.janus.meeting_url(), "teacher": teacher, "options": OPTIONS}
        if room.name == "A":
            invite["webhook_url"] = school.receiver.url
        status, body = await school.api("POST", "/api/bots", invite)
        assert status == 201, body
        room.bot = body
        if room.name == "A":
            school.webhook_secret = body.pop("webhook_secret")
    for room in school.classes.values():
        info = await until(_running, START_TIMEOUT_S, f"class {room.name} runs", school, room)
        room.stream = asyncio.create_task(follow_live(school, room, info["meeting_id"]))
    print(f"both bots running {time.monotonic() - started:.1f} s after POST /api/bots")
    print(f"ray cluster memory, two classes running (MB): {school.cluster.memory_mb()}")
    # Every student analysed, relayed from the actors through the server's live stream.
    for room in school.classes.values():
        for student in room.students:
            await until(_has_scores, 60, f"a sample with scores for {student}", room, student)
    # One CPU per class, one per node: one bot on each node, as /metrics says per node.
    metrics = await school.metrics()
    per_node = [line for line in metrics.splitlines() if line.startswith("classpulse_node_bots")]
    assert sorted(line.rsplit(" ", 1)[1] for line in per_node) == ["1.0", "1.0"], per_node
    assert "classpulse_bots_running 2.0" in metrics
    # The actors' inference figures, relayed: faces scored, a latency of the slower class.
    assert _metric(metrics, "classpulse_face_crops_scored_total") > 0
    assert _metric(metrics, 'classpulse_inference_latency_seconds{quantile="0.95"}') > 0
    assert 'classpulse_face_crops_dropped_total{reason="stale"}' in metrics


def _metric(text: str, series: str) -> float:
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{series} not in /metrics"
    return float(found.group(1))


def _has_scores(room: Class, student: str) -> bool:
    return _has_scores_after(room, student, 0)


def _has_scores_after(room: Class, student: str, since: int) -> bool:
    return any(
        e.get("type") == "sample" and e.get("student") == student and e.get("p")
        for e in room.events[since:]
    )


async def _running(school: School, room: Class) -> dict[str, Any] | None:
    info = await school.bot(room)
    assert info["state"] in ("starting", "running"), info
    return info if info["state"] == "running" else None


async def test_each_teacher_gets_the_alert_about_their_own_class(school: School) -> None:
    for room in school.classes.values():
        username = bot_username(room.teacher, NOTICE)
        assert username is not None, "the bot posted the privacy notice"
        await claim(room, username, 0)
    for room in school.classes.values():
        wanted = f"{room.confused} has looked confused for"
        await until(alerted, ALERT_TIMEOUT_S, f"class {room.name}: the alert", room, wanted, 0)
    a, b = school.classes["A"], school.classes["B"]
    assert not [t for t in alerts(a) if t.startswith(b.confused)]
    assert not [t for t in alerts(b) if t.startswith(a.confused)]
    assert (await school.bot(a))["num_alerts"] >= 1


async def test_rows_of_both_classes_land_in_one_postgresql(school: School) -> None:
    for room in school.classes.values():
        meeting_id = room.bot["meeting_id"]
        names = set(CLASSES[room.name][2])
        samples = await until(
            samples_of, 10, f"class {room.name}'s samples", school.storage, meeting_id, names
        )
        meeting = school.storage.meeting(meeting_id)
        assert meeting.teacher == CLASSES[room.name][1]
        assert all(len(times) >= 3 for times in samples.values()), samples.keys()


async def test_a_killed_actor_is_restarted_and_its_meeting_goes_on(school: School) -> None:
    room = school.classes["A"]
    bot_id, meeting_id = room.bot["id"], room.bot["meeting_id"]
    lines_before = len(room.teacher.record.lines)
    out = school.cluster.driver(
        "import time\n"
        f"actor = ray.get_actor({bot_id!r})\n"
        "print(ray.get(actor.poll.remote(None, 0, 0)).status.pid, time.time())\n"
        "ray.kill(actor, no_restart=False)\n"
    )
    old_pid, killed_at = int(out.split()[0]), float(out.split()[1])
    gap = await until(
        lambda: next((e for e in room.events if e.get("type") == "gap"), None),
        START_TIMEOUT_S,
        "the restarted bot records the gap",
    )
    print(
        f"actor killed; back in the class with the gap recorded after {time.time() - killed_at:.1f} s"
    )
    info = await school.bot(room)
    assert info["state"] == "running" and info["meeting_id"] == meeting_id
    pid = int(school.cluster.driver(
        f"print(ray.get(ray.get_actor({bot_id!r}).poll.remote(None, 0, 0)).status.pid)"
    ).split()[0])  # fmt: skip
    assert pid != old_pid
    # The same stored meeting goes on: the gap on the record, new samples after it.
    with school.storage.session() as session:
        stored_alerts = session.execute(
            select(tables.Alert.kind, tables.Alert.t).where(tables.Alert.meeting_id == meeting_id)
        ).all()
    restarts = [t for kind, t in stored_alerts if kind == RESTART_GAP_KIND]
    assert len(restarts) == 1 and restarts[0] <= killed_at + 1.0, stored_alerts
    gap_start, gap_end = restarts[0], gap["t"]
    await until(
        lambda: all(
            times[-1] > gap_end for times in stored_samples(school.storage, meeting_id).values()
        ),
        30,
        "every student of class A analysed again after the gap",
    )
    assert [m.meeting_id for m in school.storage.meetings()].count(meeting_id) == 1
    # Nothing lost outside the gap: every hole in a student's samples lies within it.
    for name, times in stored_samples(school.storage, meeting_id).items():
        holes = [(a, b) for a, b in itertools.pairwise(times) if b - a > 3.0]
        outside = [(a, b) for a, b in holes if a < gap_start - 1.0 or b > gap_end + 3.0]
        assert not outside, (name, outside, (gap_start, gap_end))
    # The teacher is asked to claim the new bot, claims, and gets alerts again.
    username = await until(
        lambda: bot_username(room.teacher, RECLAIM, lines_before), 30, "the teacher is told"
    )
    await claim(room, username, lines_before)
    await until(
        lambda: any(
            t.startswith(f"{room.confused} has looked confused for")
            for t in alerts(room, lines_before)
        ),
        ALERT_TIMEOUT_S,
        "the confusion alert again after the restart",
    )
    other = await school.bot(school.classes["B"])
    assert other["state"] == "running"  # the other class never noticed
    # The webhook receiver saw the restart, with the gap.
    restarted = await school.receiver.wait_for("bot.in_meeting", 5)
    assert restarted["code"] == "in_meeting"
    again = [e for e in school.receiver.events() if e["code"] == "restarted"]
    assert len(again) == 1 and again[0]["data"]["gap_s"] == pytest.approx(gap["gap_s"], abs=1)


async def test_a_new_server_adopts_the_running_actors(school: School) -> None:
    old = school.server
    os.killpg(old.process.popen.pid, signal.SIGKILL)  # a crash: no bot is stopped
    old.process.popen.wait(10)
    started = time.monotonic()
    school.server = await asyncio.to_thread(school.new_server("second").start)
    print(f"a new server adopted the actors {time.monotonic() - started:.1f} s after the kill")
    status, body = await school.api("GET", "/api/bots")
    assert status == 200, body
    listed = {bot["id"]: bot for bot in body["bots"]}
    for room in school.classes.values():
        bot = listed[room.bot["id"]]
        assert bot["state"] == "running" and bot["meeting_id"] == room.bot["meeting_id"]
        assert bot["teacher_code"] == room.bot["teacher_code"]
    assert listed[school.classes["A"].bot["id"]]["webhook_url"] == school.receiver.url
    # Still in class: new samples of every student reach the new server's live stream.
    for room in school.classes.values():
        since = len(room.events)
        for student in room.students:
            await until(
                lambda r=room, s=student, n=since: _has_scores_after(r, s, n),
                60,
                f"{student} analysed again, relayed by the new server",
            )


async def test_delete_stops_each_actor_for_good(school: School) -> None:
    for room in school.classes.values():
        status, body = await school.api("DELETE", f"/api/bots/{room.bot['id']}")
        assert status in (200, 202), body
        info = await until(_ended, 60, f"class {room.name}'s bot ended", school, room)
        assert info["stop_reason"] == "asked to leave"
        meeting = school.storage.meeting(info["meeting_id"])
        assert meeting.ended_at is not None
    names = [room.bot["id"] for room in school.classes.values()]
    out = school.cluster.driver(
        "import json\n"
        f"print(json.dumps([n for n in {names!r} if n in "
        "[a['name'] for a in ray.util.list_named_actors(all_namespaces=True)]]))"
    )
    assert json.loads(out.strip().splitlines()[-1]) == []
    assert "classpulse_bots_running 0.0" in await school.metrics()
    # Class A's webhook: bot.ended from the adopting server, every delivery signed.
    ended = await school.receiver.wait_for("bot.ended", 15)
    assert ended["code"] == "stopped" and ended["bot_id"] == school.classes["A"].bot["id"]
    types = school.receiver.types()
    assert types[:2] == ["bot.joining", "bot.in_meeting"] and types[-1] == "bot.ended"
    assert types.count("bot.joining") == 1 and "bot.failed" not in types
    for headers, raw in school.receiver.deliveries:
        secret, stamp = school.webhook_secret, headers[TIMESTAMP_HEADER]
        assert verify(secret, raw, stamp, headers[SIGNATURE_HEADER])


async def _ended(school: School, room: Class) -> dict[str, Any] | None:
    info = await school.bot(room)
    return info if info["state"] == "ended" else None
