"""The runtime's face and attention settings reach every place that reads faces or holds alerts.

Fast checks of the seam ``tests/bot/test_attention_e2e.py`` drives through a real class: one
``DetectorSettings`` builds each face stage (its ``stage`` replaced), here and in media workers
(sent at spawn: it must pickle), and one ``AttentionSettings`` becomes each bot's alert holds.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from bot.media.pool import MediaWorkers
from bot.meetings.protocol import MeetingConnector
from bot.runtime import BotRuntime
from engine.attention import AttentionSettings
from engine.face_settings import DetectorSettings
from engine.faces import FaceDetectors
from engine.landmarks.geometry import LandmarkSettings
from storage import Storage
from tests.bot.session_fakes import FakeConnector

FACES = DetectorSettings(detect_width=320, landmarks=LandmarkSettings(yaw_limit_deg=20.0))
HOLDS = AttentionSettings(looking_away_s=3.0, eyes_closed_s=4.0)
URL = "janus+ws://127.0.0.1:8188/?room=1234"


def test_each_stage_is_built_with_the_given_settings_but_its_own_stage() -> None:
    detectors = FaceDetectors(settings=FACES)
    for stage in ("haar", "hybrid"):
        built = detectors.get(stage).settings
        assert built.stage == stage
        assert built.landmarks.yaw_limit_deg == 20.0 and built.detect_width == 320
    assert FaceDetectors().get("haar").settings.landmarks.yaw_limit_deg == 30.0  # the default


def test_media_workers_are_given_settings_that_survive_the_trip_to_a_spawned_process() -> None:
    workers = MediaWorkers(2, face_settings=FACES)
    assert pickle.loads(pickle.dumps(workers.face_settings)) == FACES
    assert MediaWorkers(2).face_settings is None  # each worker then uses DetectorSettings()


async def test_every_bot_gets_the_runtimes_attention_holds(tmp_path: Path) -> None:
    storage = Storage.open(f"sqlite:///{tmp_path / 'holds.db'}")
    connectors: list[FakeConnector] = []

    def fake(url: str, bot_name: str) -> tuple[MeetingConnector, str, str]:
        connectors.append(FakeConnector())
        return connectors[-1], "janus", "1234"

    runtime = BotRuntime(
        storage,
        connector_factories=[fake],
        num_media_workers=1,
        num_detection_threads=1,
        mode="attention",
        face_settings=FACES,
        attention=HOLDS,
    )
    try:
        async with runtime:
            assert runtime.detector.settings == FACES
            bot = await runtime.start_bot(URL, teacher="Ms Ito", options={"alert_after_s": 5})
            settings = bot.session.settings
            assert settings.alerts.attention == HOLDS
            assert settings.alerts.sustained_s == 5  # the bot's own options still apply
            assert runtime._detectors.get(settings.face_stage) is runtime.detector
            assert not runtime.scoring_started
    finally:
        storage.close()
