"""The frame path after the face stage: several sources through detection (``SourceAnalyser``),
the inference process and states (``PersonStates``), and its no-face rule."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from engine.faces import FaceDetector, SourceAnalyser
from engine.frame_path import ClientScorer, PersonStates
from engine.inference import InferenceSettings
from engine.inference_client import InferenceClient
from engine.types import Box, EngagementState, FaceCrop, Scores, StateChange
from tests.engine.clips import Appearance, jaffe_face, render_frame


def test_sources_become_persons_with_states_and_can_leave(
    jaffe_dir: Path, random_model_path: Path
) -> None:
    face = Appearance(jaffe_face(jaffe_dir, "MK", "NE"), 0.0, 10.0)
    rng = np.random.default_rng(0)
    detector = FaceDetector()
    with InferenceClient(InferenceSettings(model_path=str(random_model_path))) as client:
        states = PersonStates(ClientScorer(client))
        sources = {name: SourceAnalyser(detector, name, 5.0) for name in ("alice", "bob")}
        persons: dict[str, set[str]] = {name: set() for name in sources}
        changes: list[StateChange] = []

        def push(name: str, frame: np.ndarray, t: float) -> bool:
            source = sources[name]
            if not source.due(t):
                return False
            found = source.analyse(frame, t)
            for crop in found.crops:
                persons[name].add(crop.person_id)
                states.face(crop.person_id, crop)
            for gone in found.absent:
                persons[name].add(gone.person_id)
                changes.extend(c for c in [states.absent(gone.person_id, gone.t)] if c)
            return True

        def poll() -> None:
            for scores in client.get_scores(0.0):
                changes.extend(c for c in [states.scores(scores)] if c)

        analysed = 0
        for index in range(45):  # 3 s at 15 fps; "alice" shows a face, "bob" an empty room
            t = index / 15
            analysed += push("alice", render_frame(640, 360, t, [face], rng), t)
            push("bob", render_frame(640, 360, t, [], rng), t)
            poll()
        assert analysed == 15  # every third frame
        assert client.flush(60)
        time.sleep(0.1)
        poll()
        now = states.tracker.states()
        assert now["bob/1"] is EngagementState.NO_FACE
        assert now["alice/1"] in {
            EngagementState.INTERESTED,
            EngagementState.BORED,
            EngagementState.CONFUSED,
        }
        assert states.state("alice/1", 44 / 15) is now["alice/1"]
        assert [c.person_id for c in changes].count("alice/1") == 1
        for person_id in persons.pop("alice"):  # alice left
            states.forget(person_id)
        assert len(persons) == 1
        assert states.tracker.state("alice/1") is None
        assert states.state("alice/1", 44 / 15) is EngagementState.NO_FACE


class RecordingScorer:
    def __init__(self) -> None:
        self.submitted: list[tuple[str, float]] = []
        self.forgotten: list[str] = []

    def submit(self, person_id: str, t: float, crop: np.ndarray) -> None:
        self.submitted.append((person_id, t))

    def forget(self, person_id: str) -> None:
        self.forgotten.append(person_id)


def _crop(t: float) -> FaceCrop:
    return FaceCrop("p/1", t, Box(10, 10, 48, 48), np.zeros((48, 48), np.uint8))


def test_no_face_rule_a_face_older_than_the_timeout_is_no_face() -> None:
    scorer = RecordingScorer()
    states = PersonStates(scorer, face_timeout_s=2.0)
    assert states.state("p/1", 0.0) is EngagementState.NO_FACE  # never seen
    t = 0.0
    while states.tracker.state("p/1") in (None, EngagementState.NO_FACE) and t < 30:
        states.face("p/1", _crop(t))
        states.scores(Scores("p/1", t, 0.1, 0.1, 0.8))
        t += 0.2
    assert states.state("p/1", t) is EngagementState.CONFUSED
    assert states.state("p/1", t - 0.2 + 2.0) is EngagementState.CONFUSED  # within the timeout
    assert states.state("p/1", t - 0.2 + 2.1) is EngagementState.NO_FACE  # whatever it last said
    assert scorer.submitted[0] == ("p/1", 0.0) and len(scorer.submitted) == round(t / 0.2)
    change = states.absent("p/1", t + 1)
    assert change is not None and change.state is EngagementState.NO_FACE and change.t == t + 1
    states.forget("p/1")
    assert scorer.forgotten == ["p/1"] and states.last_face_t("p/1") is None


def test_without_a_scorer_a_face_in_view_is_present_and_nothing_is_scored() -> None:
    states = PersonStates(None, face_timeout_s=2.0)
    assert not states.reads_emotions
    states.face("p/1", _crop(10.0))
    assert states.state("p/1", 11.0) is EngagementState.PRESENT
    assert states.state("p/1", 12.5) is EngagementState.NO_FACE
    states.forget("p/1")  # no scorer to tell: nothing raises
    assert states.state("p/1", 11.0) is EngagementState.NO_FACE
