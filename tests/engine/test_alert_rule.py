"""The alert-rule simulation's bookkeeping, on made-up state timelines (no model needed)."""

from __future__ import annotations

import numpy as np

from engine.datasets import EMOTIONS, FaceDataset
from engine.sustained import SustainedRule
from engine.training.alert_rule import (
    FER_PLUS_VAL,
    StudentClip,
    alert_table,
    fer_clips,
    resting_table,
    tick_alerts,
)
from engine.training.corpus import FER_VAL_OWN, Corpus, HeldOut
from engine.types import EngagementState as S

PHASES = (("interested", 0.0, 120.0), ("confused", 120.0, 180.0), ("interested", 180.0, 240.0))


def clip(states: list[tuple[float, S]]) -> StudentClip:
    return StudentClip("someone", PHASES, tuple(states))


def flickering_confusion() -> StudentClip:
    """Read right in the confused phase except 3 s of every 10."""
    states = [(0.0, S.INTERESTED)]
    for start in range(120, 180, 10):
        states += [(float(start), S.CONFUSED), (start + 7.0, S.INTERESTED)]
    return clip(states)


def test_strict_rule_misses_flickering_confusion_a_share_finds_it() -> None:
    assert tick_alerts(flickering_confusion(), SustainedRule(20.0)) == []
    assert tick_alerts(flickering_confusion(), SustainedRule(20.0, 0.6)) == [
        (135.0, S.CONFUSED)
    ]  # 7 + 5 s


def test_cooldown_allows_one_alert_per_kind_and_false_alerts_are_counted() -> None:
    # a false confusion in the attentive phase uses up the cooldown: the real one goes unheard
    false_first = clip(
        [(0.0, S.INTERESTED), (10.0, S.CONFUSED), (40.0, S.INTERESTED), (120.0, S.CONFUSED)]
    )
    assert tick_alerts(false_first, SustainedRule(20.0)) == [(30.0, S.CONFUSED)]
    rows = alert_table([false_first, flickering_confusion()], [SustainedRule(20.0, 0.6)])
    (row,) = rows
    assert row["confused_alerted"] == 0.5  # only the flickering student, in the phase
    # one false alert over 2 students × 180 attentive seconds
    assert row["false_alerts_per_hour"] == 1 / 360 * 3600
    assert row["confused_latency_s"] == 15.0


# -- validation students from FER2013 faces ----------------------------------------------------


class _BrightnessModel:
    """Stands in for the CNN-LSTM: a face's mean brightness says its state (dark interested, mid
    confused, bright bored), so a test can tell which faces a clip showed."""

    sequence_length = 10

    def __init__(self) -> None:
        self.seen: list[float] = []

    def embed_faces(self, faces: np.ndarray) -> np.ndarray:
        means = faces.reshape(len(faces), -1).mean(axis=1).astype(np.float32)
        self.seen += means.tolist()
        return means[:, None]

    def predict_embeddings(self, windows: np.ndarray) -> np.ndarray:
        last = windows[:, -1, 0]
        out = np.full((len(last), 3), 0.05, np.float32)
        out[np.arange(len(last)), np.where(last < 80, 0, np.where(last < 160, 2, 1))] = 0.9
        return out


def _fer_validation() -> Corpus:
    """Per emotion a few one-valued faces; the last angry ones carry an FER label that disagrees."""
    value = {"neutral": 30, "happy": 40, "surprise": 50, "angry": 120, "disgust": 125, "fear": 130}
    value["sad"] = 200
    rows = [(emotion, v, emotion) for emotion, v in value.items() for _ in range(5)]
    rows += [("angry", 252, "happy")] * 5  # FER+ says angry, FER says happy: not a clean face
    faces = np.stack([np.full((48, 48), v, np.uint8) for _, v, _ in rows])

    def labels(column: int) -> np.ndarray:
        out = np.zeros((len(rows), len(EMOTIONS)), np.float32)
        out[np.arange(len(rows)), [EMOTIONS.index(r[column]) for r in rows]] = 1.0
        return out

    def dataset(name: str, column: int) -> FaceDataset:
        blank = np.array([""] * len(rows))
        return FaceDataset(name, faces, labels(column), EMOTIONS, blank, blank)

    validation = {
        FER_PLUS_VAL: HeldOut(dataset("plus", 0)),
        FER_VAL_OWN: HeldOut(dataset("own", 2)),
    }
    return Corpus(dataset("train", 0), validation, {})


def test_fer_students_follow_the_phases_with_clean_faces_only() -> None:
    model = _BrightnessModel()
    clips = fer_clips(model, _fer_validation(), count=3)  # type: ignore[arg-type]
    assert len(clips) == 3
    assert max(model.seen) < 240  # the faces whose two labels disagree were never shown
    for student in clips:
        assert [p[0] for p in student.phases] == ["interested", "confused", "bored", "interested"]
        shown = {state for _, state in student.states}
        assert shown == {S.INTERESTED, S.CONFUSED, S.BORED}
        confused_at = next(t for t, state in student.states if state is S.CONFUSED)
        assert 120.0 <= confused_at < 125.0  # a few seconds of smoothing after the phase began
    (row,) = alert_table(clips, [SustainedRule(30.0)])
    assert row["confused_alerted"] == row["bored_alerted"] == 1.0
    assert row["false_alerts_per_hour"] == 0.0


def test_resting_table_counts_students_misread_at_rest() -> None:
    rest = (("interested", 0.0, 300.0),)
    calm = StudentClip("calm", rest, ((0.0, S.INTERESTED),))
    frowning = StudentClip("frowning", rest, ((0.0, S.CONFUSED),))  # a resting face read confused
    (row,) = resting_table([calm, frowning], [SustainedRule(30.0)])
    assert row["students_alerted"] == 0.5
    assert row["false_alerts_per_hour"] == 1 / 600 * 3600  # once: the cooldown outlasts the clip
