"""LivePipeline: several sources through detection, the inference process and states."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from engine.faces import FaceDetector
from engine.inference import InferenceSettings
from engine.inference_client import InferenceClient
from engine.live import LivePipeline
from engine.types import EngagementState
from tests.engine.clips import Appearance, jaffe_face, render_frame


def test_sources_become_persons_with_states_and_can_leave(
    jaffe_dir: Path, random_model_path: Path
) -> None:
    face = Appearance(jaffe_face(jaffe_dir, "MK", "NE"), 0.0, 10.0)
    rng = np.random.default_rng(0)
    with InferenceClient(InferenceSettings(model_path=str(random_model_path))) as client:
        pipeline = LivePipeline(FaceDetector(), client, fps=5.0)
        analysed = 0
        changes = []
        for index in range(45):  # 3 s at 15 fps; "alice" shows a face, "bob" an empty room
            t = index / 15
            analysed += pipeline.push_frame("alice", render_frame(640, 360, t, [face], rng), t)
            pipeline.push_frame("bob", render_frame(640, 360, t, [], rng), t)
            changes += pipeline.poll()[0]
        assert analysed == 15  # every third frame
        assert client.flush(60)
        time.sleep(0.1)
        changes += pipeline.poll()[0]
        states = pipeline.states.states()
        assert states["bob/1"] is EngagementState.NO_FACE
        assert states["alice/1"] in {
            EngagementState.INTERESTED,
            EngagementState.BORED,
            EngagementState.CONFUSED,
        }
        assert [c.person_id for c in changes].count("alice/1") == 1
        pipeline.remove_source("alice")
        assert pipeline.num_sources == 1
        assert pipeline.states.state("alice/1") is None
