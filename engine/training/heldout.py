"""Held-out scoring of a model: the test sets once, framing stability, the operating point.

``python -m engine.training.heldout --model FILE [--log NAME]`` prints one experiment row and,
with ``--log``, appends it to ``engine/weights/report/experiments.md``. The shipped model's report
is regenerated with ``classpulse evaluate`` (which calls ``heldout_report``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.datasets import load_mapping
from engine.datasets.images import PhotoFace, live_face
from engine.evaluation import Evaluation, evaluate
from engine.model import EmotionModel
from engine.preprocess import crop_face
from engine.quantized import add_encoder_argument, encoder_kind_for
from engine.settings_paths import datasets_dir
from engine.training.corpus import Corpus, load_corpus
from engine.types import CLASSES, Box

#: How the live tracker moves a face's box between detections: template following shifts it by
#: a few pixels (≈ ±5 % of the side) and each re-detection changes its size (≈ ±8 %).
JITTER_SHIFT = 0.05
JITTER_SCALE = 0.08
NUM_JITTERS = 6


def score_test_sets(
    model: EmotionModel, corpus: Corpus, mapping: dict[str, str]
) -> list[Evaluation]:
    """Each test set scored once, named as in ``corpus.test``."""
    return [
        replace(evaluate(model, held.dataset, mapping), dataset=name)
        for name, held in corpus.test.items()
    ]


def set_figures(evaluation: Evaluation) -> dict[str, float | int]:
    r = evaluation.report
    return {
        "faces": evaluation.num_faces,
        "accuracy": round(r.accuracy, 4),
        "macro_f1": round(r.macro_f1, 4),
        **{f"f1_{c}": round(float(v), 4) for c, v in zip(CLASSES, r.f1, strict=True)},
        **{f"recall_{c}": round(float(v), 4) for c, v in zip(CLASSES, r.recall, strict=True)},
    }


def jittered_box(box: Box, rng: np.random.Generator) -> Box:
    side = max(box.width, box.height)
    scale = rng.uniform(1 - JITTER_SCALE, 1 + JITTER_SCALE)
    dx, dy = rng.uniform(-JITTER_SHIFT, JITTER_SHIFT, size=2) * side
    width, height = max(2, round(box.width * scale)), max(2, round(box.height * scale))
    cx, cy = box.x + box.width / 2 + dx, box.y + box.height / 2 + dy
    return Box(round(cx - width / 2), round(cy - height / 2), width, height)


def framing_stability(model: EmotionModel, photos: list[PhotoFace], seed: int = 0) -> float:
    """Share of faces whose predicted state is the same for every jittered crop of their box."""
    usable = [p for p in photos if p.box is not None]
    if not usable:
        return float("nan")
    rng = np.random.default_rng(seed)
    crops = []
    for photo in usable:
        assert photo.box is not None
        crops.append(photo.crop)
        crops += [crop_face(photo.gray, jittered_box(photo.box, rng)) for _ in range(NUM_JITTERS)]
    states = model.predict_faces(np.stack(crops)).argmax(axis=1).reshape(len(usable), -1)
    return float(np.mean(np.all(states == states[:, :1], axis=1)))


def live_window_stability(
    model: EmotionModel, photos: list[PhotoFace], num_windows: int = 3, seed: int = 0
) -> float:
    """Share of faces whose state is the same for ``num_windows`` live-like windows: each window
    is ``sequence_length`` crops with independently jittered boxes, read by the LSTM as live."""
    usable = [p for p in photos if p.box is not None]
    if not usable:
        return float("nan")
    rng = np.random.default_rng(seed)
    length = model.sequence_length
    sequences = np.stack(
        [
            np.stack([crop_face(p.gray, jittered_box(p.box, rng)) for _ in range(length)])
            for p in usable
            for _ in range(num_windows)
            if p.box is not None
        ]
    )
    states = model.predict_sequences(sequences).argmax(axis=1).reshape(len(usable), num_windows)
    return float(np.mean(np.all(states == states[:, :1], axis=1)))


#: A webcam's frame-to-frame changes on a still face: exposure (gain ±15 %) and sensor noise
#: (σ = 4 gray levels), each copy re-detected by the live face stage from scratch.
CAMERA_GAIN = 0.15
CAMERA_NOISE = 4.0


def camera_copy(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    frame = gray.astype(np.float32) * rng.uniform(1 - CAMERA_GAIN, 1 + CAMERA_GAIN)
    frame += rng.normal(0.0, CAMERA_NOISE, gray.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


def stage_stability(
    model: EmotionModel, photos: list[PhotoFace], seed: int = 0
) -> tuple[float, float]:
    """Framing as the live face stage itself moves it: each photo and ``NUM_JITTERS`` camera
    copies of it go through the live stage from scratch (detection, landmarks, box, crop).
    Returns the share of faces whose state is the same in every copy the stage found, and the
    share of copies it found."""
    usable = [p for p in photos if p.box is not None]
    if not usable:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    crops, owners, found = [], [], 0
    for index, photo in enumerate(usable):
        crops.append(photo.crop)
        owners.append(index)
        for _ in range(NUM_JITTERS):
            seen = live_face(camera_copy(photo.gray, rng))
            if seen is not None:
                crops.append(seen[1])
                owners.append(index)
                found += 1
    states = model.predict_faces(np.stack(crops)).argmax(axis=1)
    first: dict[int, int] = {}
    stable = np.ones(len(usable), bool)
    for owner, state in zip(owners, states, strict=True):
        first.setdefault(owner, state)
        stable[owner] &= state == first[owner]
    return float(stable.mean()), found / (len(usable) * NUM_JITTERS)


def heldout_scores(
    model: EmotionModel, corpus: Corpus, mapping: dict[str, str]
) -> dict[str, object]:
    """Every test set's scores and framing stability over the photo test sets (the live crop)."""
    photos = [p for held in corpus.test.values() for p in held.photos]
    stage_stable, stage_found = stage_stability(model, photos)
    return {
        "stage_stability": round(stage_stable, 4),
        "stage_found": round(stage_found, 4),
        "sets": {e.dataset: set_figures(e) for e in score_test_sets(model, corpus, mapping)},
        "framing_stability": round(framing_stability(model, photos), 4),
        "live_window_stability": round(live_window_stability(model, photos), 4),
        "framing_faces": len(photos),
    }


def experiment_row(name: str, recipe: str, minutes: float, results: dict[str, object]) -> str:
    sets = results["sets"]
    assert isinstance(sets, dict)

    def f1(key: str) -> str:
        return f"{sets[key]['macro_f1']:.3f}" if key in sets else "—"

    def recall(key: str) -> str:
        return f"{sets[key]['recall_confused']:.2f}" if key in sets else "—"

    return (
        f"| {name} | {recipe} | {minutes:.0f} | {results.get('selection', float('nan')):.3f} | "
        f"{f1('PublicTest (FER labels)')} | {f1('PublicTest (FER+ labels)')} | "
        f"{f1('jaffe')} ({recall('jaffe')}) | {f1('taiwanese')} ({recall('taiwanese')}) | "
        f"{results['framing_stability']:.3f} (live {results.get('live_window_stability', float('nan')):.3f}; "
        f"stage {results.get('stage_stability', float('nan')):.3f}) |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    add_encoder_argument(parser)
    parser.add_argument("--name", default=None, help="row name (default: the run folder)")
    parser.add_argument(
        "--log", type=Path, default=None, help="append the row to this markdown file"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    model = EmotionModel.load(args.model, encoder_kind_for(args.encoder))
    mapping = load_mapping()
    corpus = load_corpus(datasets_dir())
    results = heldout_scores(model, corpus, mapping)
    metadata_file = args.model.with_suffix(".json")
    metadata = json.loads(metadata_file.read_text()) if metadata_file.is_file() else {}
    results["selection"] = metadata.get("selection_after_correction", float("nan"))
    recipe = metadata.get("recipe", {})
    changed = {
        k: v
        for k, v in recipe.items()
        if k not in ("epochs", "patience", "batch_size", "learning_rate", "seed")
    }
    row = experiment_row(
        args.name or args.model.parent.name,
        ", ".join(f"{k}={v}" for k, v in changed.items()),
        metadata.get("training_seconds", 0) / 60,
        results,
    )
    print(json.dumps(results, indent=2))
    print(row)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.log:
        with args.log.open("a") as handle:
            handle.write(row + "\n")


if __name__ == "__main__":
    main()
