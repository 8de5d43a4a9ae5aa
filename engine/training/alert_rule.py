"""The alert rule from data: simulated classes of held-out faces through the live scoring path.

Each posed held-out subject (JAFFE and Taiwanese validation or test people: never trained on)
becomes a student whose camera shows, at 5 fps, crops of their own photos cut with the live
tracker's box jitter and a webcam's noise: 120 s attentive (neutral, happy, surprise in turn),
then 60 s of their posed confusion (anger, disgust, fear), 60 s of sadness, 60 s attentive again.
Validation adds students made of FER2013 validation faces (``fer_clips``), and ``--resting``
shows each student's neutral face alone for 5 minutes (what an attentive student mostly shows).
The frames go through the model's per-frame CNN, its LSTM over a sliding 10-frame window and
``engine.states`` (smoothing, hysteresis), exactly as live, then the live policy's rule
(``engine.sustained``) on a 1 s tick with its cooldown. Per candidate rule the tables give the
share of students alerted in their designed confused / bored phase and the false alerts.

``python -m engine.training.alert_rule [--model FILE] [--split validation|test|both]
[--resting]`` prints the tables; validation chooses, test reports.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.datasets import EMOTIONS, load_mapping
from engine.datasets.images import PhotoFace
from engine.model import EmotionModel
from engine.preprocess import crop_face
from engine.quantized import add_encoder_argument, encoder_kind_for
from engine.settings_paths import datasets_dir
from engine.states import PersonState, StateSettings
from engine.sustained import StateHistory, SustainedRule
from engine.training.augment import AugmentSettings, degrade, jitter_framing
from engine.training.corpus import FER_VAL_OWN, Corpus, load_corpus
from engine.training.heldout import jittered_box
from engine.types import EngagementState, Scores

FPS = 5.0
ATTENTIVE = ("neutral", "happy", "surprise")
PHASES: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("interested", ATTENTIVE, 120.0),
    ("confused", ("angry", "disgust", "fear"), 60.0),
    ("bored", ("sad",), 60.0),
    ("interested", ATTENTIVE, 60.0),
)
#: A resting face: what an attentive student mostly shows. The phases above rotate through smiles
#: and surprise too, so a resting face that the model misreads is on screen only a few seconds
#: there; this clip shows nothing else for 5 minutes.
RESTING: tuple[tuple[str, tuple[str, ...], float], ...] = (("interested", ("neutral",), 300.0),)
CANDIDATES_S = (5.0, 10.0, 15.0, 20.0, 25.0, 30.0)
#: Camera noise only (no reframing: the box jitter is the tracker's, applied before cropping).
_CAMERA = AugmentSettings(scale=0.0, shift=0.0, rotation_deg=0.0, flip=False, gamma=0.15)
#: FER2013 faces are crops already: the tracker's jitter (±5 % shift, ±8 % size) is applied to them.
_TRACKER = AugmentSettings(scale=0.08, shift=0.05, rotation_deg=0.0, flip=False)
FER_PLUS_VAL = "fer-val (FER+ labels)"
#: Validation students made of FER2013 validation faces, and the faces each shows per phase.
FER_STUDENTS, FER_FACES_PER_PHASE = 48, 4


@dataclass(frozen=True)
class StudentClip:
    name: str
    phases: tuple[tuple[str, float, float], ...]  # (designed state, start s, end s)
    states: tuple[tuple[float, EngagementState], ...]  # state changes (t, state)
    #: The model's per-frame probabilities (``None`` for hand-made clips in tests), kept so a
    #: prior offset can be tried without scoring again (``engine.training.operating_point``).
    probabilities: np.ndarray | None = field(default=None, compare=False, repr=False)


Phases = tuple[tuple[str, tuple[str, ...], float], ...]


def student_frames(
    photos: Sequence[tuple[PhotoFace, str]], rng: np.random.Generator, plan: Phases = PHASES
) -> tuple[np.ndarray, tuple[tuple[str, float, float], ...]] | None:
    """Frames (N, 48, 48) of one student following ``plan``; ``None`` when a phase lacks photos."""
    frames, phases, t = [], [], 0.0
    for state, emotions, seconds in plan:
        own = [p for p, emotion in photos if emotion in emotions]
        if not own:
            return None
        num = int(seconds * FPS)
        hold = max(1, num // len(own))  # each photo held in turn across the phase
        for index in range(num):
            photo = own[(index // hold) % len(own)]
            assert photo.box is not None
            crop = crop_face(photo.gray, jittered_box(photo.box, rng))
            frames.append(degrade(crop, rng, _CAMERA))
        phases.append((state, t, t + seconds))
        t += seconds
    return np.stack(frames), tuple(phases)


def fer_clips(
    model: EmotionModel,
    corpus: Corpus,
    count: int = FER_STUDENTS,
    seed: int = 1,
    plan: Phases = PHASES,
) -> list[StudentClip]:
    """Validation students made of FER2013 validation faces: the 4 posed validation people are too
    few to choose a rule, and these faces are never trained on or tested with.

    Each student shows ``FER_FACES_PER_PHASE`` faces per phase, each held in turn (faces of
    several people: a proxy for how the model's reading flickers, not for one person). Only faces
    whose FER+ majority (≥ half the votes) and FER's own label give the same state are used.
    """
    plus, own = corpus.validation[FER_PLUS_VAL].dataset, corpus.validation[FER_VAL_OWN].dataset
    mapping = load_mapping()
    emotions = [EMOTIONS[i] for i in plus.labels.argmax(axis=1)]
    own_states = [mapping.get(EMOTIONS[i]) for i in own.labels.argmax(axis=1)]
    clean = [
        index
        for index, emotion in enumerate(emotions)
        if plus.labels[index].max() >= 0.5 and mapping.get(emotion) == own_states[index]
    ]
    pools = {
        name: [i for i in clean if emotions[i] in phase_emotions]
        for name, phase_emotions, _ in plan
    }
    rng = np.random.default_rng(seed)
    clips = []
    for student in range(count):
        frames, phases, t = [], [], 0.0
        for name, _, seconds in plan:
            picks = rng.choice(pools[name], FER_FACES_PER_PHASE, replace=False)
            num = int(seconds * FPS)
            for index in range(num):
                face = plus.faces[picks[min(index * len(picks) // num, len(picks) - 1)]]
                frames.append(degrade(jitter_framing(face, rng, _TRACKER), rng, _CAMERA))
            phases.append((name, t, t + seconds))
            t += seconds
        clips.append(_tracked(model, f"fer:{student}", np.stack(frames), tuple(phases)))
    return clips


def _tracked(
    model: EmotionModel, name: str, frames: np.ndarray, phases: tuple[tuple[str, float, float], ...]
) -> StudentClip:
    """Score ``frames`` as live and keep the state tracker's changes."""
    return track(name, phases, score_clip(model, frames))


def track(
    name: str,
    phases: tuple[tuple[str, float, float], ...],
    probabilities: np.ndarray,
    fine_at_s: float | None = None,
) -> StudentClip:
    """The live state tracker over per-frame ``probabilities`` (5 fps), with the teacher's
    ``!fine`` (``PersonState.calibrate``) at ``fine_at_s`` when given."""
    person = PersonState(name, StateSettings())
    changes = []
    for index, row in enumerate(probabilities):
        t = index / FPS
        if fine_at_s is not None and t >= fine_at_s:
            person.calibrate(t)
            fine_at_s = None
        change = person.push(Scores(name, t, *map(float, row)))
        if change is not None:
            changes.append((change.t, change.state))
    return StudentClip(name, phases, tuple(changes), probabilities)


def score_clip(model: EmotionModel, frames: np.ndarray) -> np.ndarray:
    """Per-frame probabilities with the LSTM over the last ``sequence_length`` frames."""
    embeddings = model.embed_faces(frames)
    length = model.sequence_length
    padded = np.concatenate([np.repeat(embeddings[:1], length - 1, axis=0), embeddings])
    windows = np.lib.stride_tricks.sliding_window_view(padded, (length, embeddings.shape[1]))
    return model.predict_embeddings(np.ascontiguousarray(windows[:, 0]))


def simulate(
    model: EmotionModel, corpus: Corpus, seed: int = 0, split: str = "test", plan: Phases = PHASES
) -> list[StudentClip]:
    """One clip per subject of the posed sets' ``split`` ("test" or "validation")."""
    rng = np.random.default_rng(seed)
    sets = corpus.test if split == "test" else corpus.validation
    clips = []
    for name in ("jaffe", "taiwanese"):
        held = sets[name if split == "test" else f"{name}-val"]
        emotions = [EMOTIONS[i] for i in held.dataset.labels.argmax(axis=1)]
        for subject in sorted(set(held.dataset.subjects)):
            mine = [
                (p, e)
                for p, e, s in zip(held.photos, emotions, held.dataset.subjects, strict=True)
                if s == subject
            ]
            made = student_frames(mine, rng, plan)
            if made is None:
                continue
            frames, phases = made
            clips.append(_tracked(model, f"{name}:{subject}", frames, phases))
    return clips


def runs(clip: StudentClip, end: float) -> list[tuple[EngagementState, float, float]]:
    """(state, start, end) of each stretch of one state."""
    out = []
    for index, (t, state) in enumerate(clip.states):
        stop = clip.states[index + 1][0] if index + 1 < len(clip.states) else end
        out.append((state, t, stop))
    return out


#: Rules compared: the strict rule (held without a break) at each hold, then shares of a window.
RULES: tuple[SustainedRule, ...] = (
    *(SustainedRule(seconds, 1.0) for seconds in CANDIDATES_S),
    *(
        SustainedRule(window, share)
        for window in (20.0, 30.0, 40.0)
        for share in (0.5, 0.6, 0.7, 0.8)
    ),
)
#: The live policy's per-student cooldown (``bot.alerts.AlertSettings.cooldown_s``): at most one
#: alert per kind in a simulated clip.
COOLDOWN_S = 300.0


def tick_alerts(
    clip: StudentClip, rule: SustainedRule, cooldown_s: float = COOLDOWN_S
) -> list[tuple[float, EngagementState]]:
    """The confused/bored alerts the live policy would send: its 1 s tick reads the state shown
    at that moment into a :class:`StateHistory` and applies ``rule``."""
    history = StateHistory(rule.window_s)
    end = clip.phases[-1][2]
    changes, index = clip.states, 0
    last: dict[EngagementState, float] = {}
    alerts = []
    for tick in range(1, int(end) + 1):
        t = float(tick)
        while index < len(changes) and changes[index][0] <= t:
            index += 1
        if index == 0:
            continue
        history.update(changes[index - 1][1], t)
        for kind in (EngagementState.CONFUSED, EngagementState.BORED):
            if history.sustained(rule, kind, t, slack=1e-6) is None:
                continue
            if kind in last and t - last[kind] < cooldown_s:
                continue
            last[kind] = t
            alerts.append((t, kind))
    return alerts


def alert_table(
    clips: list[StudentClip], rules: Sequence[SustainedRule] = RULES
) -> list[dict[str, float]]:
    rows = []
    for rule in rules:
        hits = {"confused": 0, "bored": 0}
        latency: dict[str, list[float]] = {"confused": [], "bored": []}
        false_alerts, attentive_s = 0, 0.0
        for clip in clips:
            alerts = tick_alerts(clip, rule)
            for designed, start, stop in clip.phases:
                fired = [(t, kind) for t, kind in alerts if start <= t < stop]
                if designed == "interested":
                    attentive_s += stop - start
                    false_alerts += len(fired)
                    continue
                times = [t for t, kind in fired if kind.value == designed]
                if times:
                    hits[designed] += 1
                    latency[designed].append(min(times) - start)
        rows.append(
            {
                "window_s": rule.window_s,
                "share": rule.share,
                "confused_alerted": hits["confused"] / len(clips),
                "bored_alerted": hits["bored"] / len(clips),
                "confused_latency_s": float(np.median(latency["confused"]))
                if latency["confused"]
                else float("nan"),
                "false_alerts_per_hour": false_alerts / max(attentive_s, 1.0) * 3600.0,
            }
        )
    return rows


def resting_table(
    clips: list[StudentClip], rules: Sequence[SustainedRule] = RULES
) -> list[dict[str, float]]:
    """Per rule: the share of students who were sent a false alert while showing only their
    resting face, and the false alerts per student-hour."""
    rows = []
    for rule in rules:
        counts = [len(tick_alerts(clip, rule)) for clip in clips]
        seconds = sum(clip.phases[-1][2] for clip in clips)
        rows.append(
            {
                "window_s": rule.window_s,
                "share": rule.share,
                "students_alerted": sum(1 for n in counts if n) / len(clips),
                "false_alerts_per_hour": sum(counts) / max(seconds, 1.0) * 3600.0,
            }
        )
    return rows


def rule_name(row: dict[str, float]) -> str:
    """ "30 s without a break" or "70 % of 40 s" for a row with ``window_s`` and ``share``."""
    if row["share"] >= 1.0:
        return f"{row['window_s']:.0f} s without a break"
    return f"{row['share']:.0%} of {row['window_s']:.0f} s"


def resting_markdown(rows: list[dict[str, float]], num_students: int, split: str) -> str:
    lines = [
        f"{num_students} {split} students showing only their resting (neutral) face for 5 minutes.",
        "",
        "| rule | students sent a false alert | false alerts per student-hour |",
        "|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {rule_name(row)} | {row['students_alerted']:.0%} | "
            f"{row['false_alerts_per_hour']:.1f} |"
        )
    return "\n".join(lines)


def markdown(rows: list[dict[str, float]], num_students: int, split: str = "test") -> str:
    lines = [
        f"{num_students} simulated students ({split} subjects), 5 fps, live box jitter and noise.",
        "",
        "| rule | alerted in confused phase | alerted in bored phase | median time to confused alert | false alerts per student-hour attentive |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {rule_name(row)} | {row['confused_alerted']:.0%} | {row['bored_alerted']:.0%} | "
            f"{row['confused_latency_s']:.0f} s | {row['false_alerts_per_hour']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=None)
    add_encoder_argument(parser)
    parser.add_argument(
        "--resting", action="store_true", help="also 5 minutes of each student's resting face"
    )
    parser.add_argument(
        "--split",
        choices=("validation", "test", "both"),
        default="both",
        help="posed subjects to simulate: validation (to choose the rule), test (to report it)",
    )
    args = parser.parse_args(argv)
    model = EmotionModel.load(args.model, encoder_kind_for(args.encoder))
    corpus = load_corpus(datasets_dir())
    for split in ("validation", "test") if args.split == "both" else (args.split,):
        clips = simulate(model, corpus, split=split)
        print(markdown(alert_table(clips), len(clips), split), end="\n\n", flush=True)
        if split == "validation":  # the posed validation people are few: add FER2013's faces
            fer = fer_clips(model, corpus)
            print(markdown(alert_table(fer), len(fer), "FER2013 validation"), end="\n\n")
            pooled = clips + fer
            print(markdown(alert_table(pooled), len(pooled), "all validation"), end="\n\n")
        if args.resting:
            rest = simulate(model, corpus, split=split, plan=RESTING)
            if split == "validation":
                rest += fer_clips(model, corpus, plan=RESTING)
            print(resting_markdown(resting_table(rest), len(rest), split), end="\n\n", flush=True)


if __name__ == "__main__":
    main()
