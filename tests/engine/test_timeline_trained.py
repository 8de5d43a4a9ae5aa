"""With the shipped weights: the timeline follows a face from neutral to angry to happy.

JAFFE faces of three subjects side by side hold a neutral face for 10 s, then their first posed
anger photo, then a happy one. The shipped mapping reads these as interested → confused →
interested. This tests the runtime (tracking, windows, smoothing, timing), not the model's
accuracy, so it uses three people whose posed anger the shipped model reads as confused (KA and KL
were training subjects, YM a held-out one); some people's anger it misses (see MODEL_CARD.md,
"Where it goes wrong"). Needs the
trained weights (``engine/weights/emotion_cnn_lstm.keras``): fails under CI without them, skips
elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import engine
from engine.analyze import analyze_video
from engine.datasets import load_mapping
from engine.inference import InferenceSettings
from engine.inference_client import InferenceClient
from engine.types import EngagementState
from tests.conftest import require
from tests.engine.clips import Appearance, jaffe_face, make_clip

SEGMENT_S = 10.0
#: Seconds after a change of expression within which the timeline must show the new state: the
#: LSTM sees 2 s, the smoothing adds ~1 s and the hysteresis 1 s.
MAX_DELAY_S = 4.5
#: Subject → the take of their anger photo used for the confused phase.
SUBJECTS = {"KA": 1, "KL": 1, "YM": 1}
EMOTIONS = ("NE", "AN", "HA")


@pytest.fixture(scope="module")
def shipped_weights() -> Path:
    # engine.model.default_weights_path, without importing TensorFlow into the test process.
    path = Path(engine.__file__).parent / "weights" / "emotion_cnn_lstm.keras"
    require(path.is_file(), f"trained weights {path} are missing (train them: classpulse train)")
    return path


def test_timeline_follows_neutral_angry_happy(
    jaffe_dir: Path, tmp_path: Path, shipped_weights: Path
) -> None:
    mapping = load_mapping()
    names = {"NE": "neutral", "AN": "angry", "HA": "happy"}
    expected = [EngagementState(mapping[names[e]]) for e in EMOTIONS]
    assert expected[0] != expected[1] != expected[2], "the clip must show two state changes"
    faces = [
        Appearance(
            jaffe_face(
                jaffe_dir, subject, emotion, take=SUBJECTS[subject] if emotion == "AN" else 1
            ),
            i * SEGMENT_S,
            (i + 1) * SEGMENT_S,
            cx=0.2 + 0.3 * column,
            size=0.42,
        )
        for column, subject in enumerate(SUBJECTS)
        for i, emotion in enumerate(EMOTIONS)
    ]
    clip = make_clip(tmp_path / "moods.webm", faces, 3 * SEGMENT_S, fps=15)
    settings = InferenceSettings(model_path=str(shipped_weights), max_age_s=None)
    with InferenceClient(settings) as client:
        result = analyze_video(clip, tmp_path / "out", client=client)
    assert len(result.persons) == 3
    followed = 0
    report = []
    for person in result.persons:
        changes = [(c.t, c.state) for c in result.changes if c.person_id == person]
        report.append(f"{person}: {changes}")
        # Each expression shows as the state the mapping expects, within MAX_DELAY_S of it.
        ok = all(
            any(start <= t <= start + MAX_DELAY_S and state is want for t, state in changes)
            for start, want in (
                (0.0, expected[0]),
                (SEGMENT_S, expected[1]),
                (2 * SEGMENT_S, expected[2]),
            )
        )
        followed += ok
    # Most faces, not all: in a moving, re-encoded clip one subject's pose may still read
    # differently to the model, a matter of its accuracy (`classpulse evaluate`), not the runtime.
    assert followed >= 2, report
