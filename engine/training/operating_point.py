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
``--fine`` also simulates the teacher's ``!fine NAME`` (``engine.states.CalibrationSettings``):
15 minutes of each student's resting face with ``!fine`` 10 s after their first false alert, and
the designed phases after 2 minutes of calm face with ``!fine`` said at 115 s (what it costs when
the teacher calibrates a student who later is confused).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.model import EmotionModel
from engine.quantized import add_encoder_argument, encoder_kind_for
from engine.settings_paths import datasets_dir
from engine.sustained import SustainedRule
from engine.training.alert_rule import (
    ATTENTIVE,
    FPS,
    PHASES,
    RESTING,
    Phases,
    StudentClip,
    fer_clips,
    rule_name,
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
#: The live rule (``bot.alerts.AlertSettings``: 25 s without a break).
LIVE_RULE = SustainedRule(25.0)
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
        lines.append(
            f"| {rule_name(row)} | {row['offset']:+.2f} | {row['confused_alerted']:.0%} / "
            f"{row['bored_alerted']:.0%} | {row['attentive_false']:.0%} | "
            f"{row['resting_false']:.0%} | {row['confused_first_missed']:.0%} | {row['E']:.3f} |"
        )
    return "\n".join(lines)


def alerts_with_fine(
    clip: StudentClip, fine_at_s: float | None, rule: SustainedRule
) -> list[tuple[float, EngagementState]]:
    """The live policy's alerts for a clip tracked with ``!fine`` at ``fine_at_s``
    (``alert_rule.track``): at ``!fine`` the policy
    forgets the state held so far and the cooldowns of the answered alerts
    (``bot.alerts.AlertPolicy.calibrated``)."""
    if fine_at_s is None:
        return tick_alerts(clip, rule)
    before = [(t, kind) for t, kind in tick_alerts(clip, rule) if t < fine_at_s]
    shown = [state for t, state in clip.states if t < fine_at_s]
    restart = ((fine_at_s, shown[-1]),) if shown else ()
    later = tuple((t, state) for t, state in clip.states if t >= fine_at_s)
    fresh = StudentClip(clip.name, clip.phases, restart + later)
    return before + [(t, kind) for t, kind in tick_alerts(fresh, rule) if t >= fine_at_s]


def fine_figures(
    found: Scenarios, rule: SustainedRule = LIVE_RULE, minutes: float = 15.0
) -> dict[str, float]:
    """What ``!fine`` does for resting students, and what it costs designed ones."""
    out = {"resting": 0.0, "alerts_without": 0.0, "alerts_with": 0.0, "alerted_again": 0.0}
    for clip in found.resting:
        assert clip.probabilities is not None
        frames = int(minutes * 60 * FPS)
        reps = -(-frames // len(clip.probabilities))
        long = np.concatenate([clip.probabilities] * reps)[:frames]
        phases = (("interested", 0.0, minutes * 60),)
        plain = tick_alerts(track(clip.name, phases, long), rule)
        fine_at = plain[0][0] + 10.0 if plain else None
        after = alerts_with_fine(track(clip.name, phases, long, fine_at), fine_at, rule)
        out["resting"] += 1
        out["alerts_without"] += len(plain)
        out["alerts_with"] += len(after)
        out["alerted_again"] += len(after) > 1
    designed = {clip.name: clip for clip in found.designed}
    hits = {(fine, kind): 0 for fine in (False, True) for kind in ("confused", "bored")}
    num = 0
    for clip in found.resting:
        other = designed.get(clip.name)
        if other is None or clip.probabilities is None or other.probabilities is None:
            continue
        calm = int(120 * FPS)
        joined = np.concatenate([clip.probabilities[:calm], other.probabilities[calm:]])
        num += 1
        for fine in (False, True):
            fine_at = 115.0 if fine else None
            alerts = alerts_with_fine(
                track(other.name, other.phases, joined, fine_at), fine_at, rule
            )
            for designed_state, start, stop in other.phases:
                if designed_state in ("confused", "bored") and any(
                    start <= t < stop and kind.value == designed_state for t, kind in alerts
                ):
                    hits[(fine, designed_state)] += 1
    for (fine, kind), count in hits.items():
        out[f"{kind}_{'fine' if fine else 'plain'}"] = count / max(num, 1)
    out["designed"] = num
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=None)
    add_encoder_argument(parser)
    parser.add_argument("--split", choices=("validation", "test"), default="validation")
    parser.add_argument("--fine", action="store_true", help="also simulate the teacher's !fine")
    args = parser.parse_args(argv)
    model = EmotionModel.load(args.model, encoder_kind_for(args.encoder))
    found = scenarios(model, load_corpus(datasets_dir()), args.split)
    print(markdown(table(found), found, args.split), flush=True)
    if args.fine:
        f = fine_figures(found)
        print(
            f"\n!fine, {args.split}: {f['resting']:.0f} students, 15 min of resting face each: "
            f"{f['alerts_without']:.0f} false alerts without it, {f['alerts_with']:.0f} with "
            f"!fine 10 s after the first; {f['alerted_again']:.0f} students alerted again after "
            f"it.\n{f['designed']:.0f} students calm for 2 min, then confused and sad: alerted "
            f"{f['confused_plain']:.0%} / {f['bored_plain']:.0%} without !fine, "
            f"{f['confused_fine']:.0%} / {f['bored_fine']:.0%} when the teacher said !fine at "
            "115 s.",
            flush=True,
        )


if __name__ == "__main__":
    main()
