"""The operating point — the alert hold, its share and the prior offset — chosen together.

The hold (``bot.alerts.AlertSettings``) and the offset added to the model's bored and confused
logits interact: a longer hold forgives a model that reads calm faces as confused, a lower offset
forgives a shorter hold. Both are judged here on the same simulated students
(``engine.training.alert_rule``) in three scenarios:

- **designed**: attentive, then posed confusion, sadness, attentive again;
- **resting**: the student's calm face alone for 5 minutes;
- **confused first**: confused from the first minute (a baseline or a long hold could miss it).

The criterion, written down before the first run (``engine/weights/report/experiments.md``,
2026-11-30), counts four error rates alike:

    E = missed in the designed confused and bored phases (mean of the two)
      + designed-class students sent any false alert while attentive
      + resting students sent a false alert
      + confused-first students not alerted ``confused`` in their opening phase.

``python -m engine.training.operating_point [--model FILE] [--split validation|test]`` prints
E for each rule and offset; validation chooses, test reports. An offset changes the network, so
the release gate (held-out people, stage stability: ``engine.training.heldout``) must pass too.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.model import EmotionModel
from engine.settings_paths import datasets_dir
from engine.sustained import SustainedRule
from engine.training.alert_rule import (
    ATTENTIVE,
    PHASES,
    RESTING,
    Phases,
    StudentClip,
    fer_clips,
    simulate,
    tick_alerts,
    track,
)
from engine.training.corpus import Corpus, load_corpus
from engine.types import EngagementState

#: Confused from the first minute, then the designed class's other phases.
CONFUSED_FIRST: Phases = (
    ("confused", ("angry", "disgust", "fear"), 60.0),
    ("interested", ATTENTIVE, 120.0),
    ("bored", ("sad",), 60.0),
    ("interested", ATTENTIVE, 60.0),
)
RULES: tuple[SustainedRule, ...] = (
    SustainedRule(20.0),
    SustainedRule(25.0),
    SustainedRule(30.0),
    SustainedRule(40.0, 0.7),
    SustainedRule(40.0, 0.8),
)
#: Added to the bored and confused logits (``interested`` stays).
OFFSETS = (-0.25, 0.0, 0.25)


@dataclass(frozen=True)
class Scenarios:
    designed: list[StudentClip]
    resting: list[StudentClip]
    confused_first: list[StudentClip]


def scenarios(model: EmotionModel, corpus: Corpus, split: str) -> Scenarios:
    """The three scenarios' students of ``split`` (validation adds the FER2013 students)."""

    def clips(plan: Phases) -> list[StudentClip]:
        made = simulate(model, corpus, split=split, plan=plan)
        return made + fer_clips(model, corpus, plan=plan) if split == "validation" else made

    return Scenarios(clips(PHASES), clips(RESTING), clips(CONFUSED_FIRST))


def with_offset(clips: Sequence[StudentClip], offset: float) -> list[StudentClip]:
    """``clips`` tracked again as if ``offset`` were added to the bored and confused logits."""
    if offset == 0.0:
        return list(clips)
    factors = np.exp(np.array([0.0, offset, offset]))
    out = []
    for clip in clips:
        if clip.probabilities is None:
            raise ValueError(f"Expected a scored clip. Received: {clip.name!r} without scores")
        shifted = clip.probabilities * factors
        out.append(track(clip.name, clip.phases, shifted / shifted.sum(axis=1, keepdims=True)))
    return out


def errors(found: Scenarios, rule: SustainedRule) -> dict[str, float]:
    """The criterion's four rates and their sum ``E`` under ``rule``."""
    hits = {"confused": 0, "bored": 0}
    false_alerted = 0
    for clip in found.designed:
        alerts = tick_alerts(clip, rule)
        falsely = False
        for designed, start, stop in clip.phases:
            fired = [kind for t, kind in alerts if start <= t < stop]
            if designed == "interested":
                falsely = falsely or bool(fired)
            elif any(kind.value == designed for kind in fired):
                hits[designed] += 1
        false_alerted += falsely
    num = max(len(found.designed), 1)
    rates = {
        "confused_alerted": hits["confused"] / num,
        "bored_alerted": hits["bored"] / num,
        "attentive_false": false_alerted / num,
        "resting_false": sum(1 for c in found.resting if tick_alerts(c, rule))
        / max(len(found.resting), 1),
        "confused_first_missed": sum(1 for c in found.confused_first if not _opening_hit(c, rule))
        / max(len(found.confused_first), 1),
    }
    missed = 1.0 - (rates["confused_alerted"] + rates["bored_alerted"]) / 2
    rates["E"] = (
        missed + rates["attentive_false"] + rates["resting_false"] + rates["confused_first_missed"]
    )
    return rates


def _opening_hit(clip: StudentClip, rule: SustainedRule) -> bool:
    _, start, stop = clip.phases[0]
    return any(
        start <= t < stop and kind is EngagementState.CONFUSED
        for t, kind in tick_alerts(clip, rule)
    )


def table(
    found: Scenarios,
    rules: Sequence[SustainedRule] = RULES,
    offsets: Sequence[float] = OFFSETS,
) -> list[dict[str, float]]:
    rows = []
    for offset in offsets:
        shifted = Scenarios(
            with_offset(found.designed, offset),
            with_offset(found.resting, offset),
            with_offset(found.confused_first, offset),
        )
        for rule in rules:
            rows.append(
                {"window_s": rule.window_s, "share": rule.share, "offset": offset}
                | errors(shifted, rule)
            )
    return rows


def markdown(rows: Sequence[dict[str, float]], found: Scenarios, split: str) -> str:
    lines = [
        f"{split}: {len(found.designed)} designed, {len(found.resting)} resting, "
        f"{len(found.confused_first)} confused-first students; E counts four error rates alike.",
        "",
        "| rule | offset | confused / bored alerted | designed students with a false alert | "
        "resting students falsely alerted | confused-first missed | E |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: (r["share"], r["window_s"], r["offset"])):
        rule = (
            f"{row['window_s']:.0f} s"
            if row["share"] >= 1.0
            else f"{row['share']:.0%} of {row['window_s']:.0f} s"
        )
        lines.append(
            f"| {rule} | {row['offset']:+.2f} | {row['confused_alerted']:.0%} / "
            f"{row['bored_alerted']:.0%} | {row['attentive_false']:.0%} | "
            f"{row['resting_false']:.0%} | {row['confused_first_missed']:.0%} | {row['E']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--split", choices=("validation", "test"), default="validation")
    args = parser.parse_args(argv)
    model = EmotionModel.load(args.model)
    found = scenarios(model, load_corpus(datasets_dir()), args.split)
    print(markdown(table(found), found, args.split), flush=True)


if __name__ == "__main__":
    main()
