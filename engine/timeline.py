"""An offline analysis's result and its timeline files: segments per person as CSV and JSON, scores
as CSV, a PNG plot (matplotlib is imported only to draw it)."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.types import CLASSES, EngagementState, InferenceStats, Scores, StateChange


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of time (seconds) during which a person stayed in one state."""

    person_id: str
    state: EngagementState
    start_s: float
    end_s: float
    #: The smoothed probability when the state was entered (1.0 for ``no_face``).
    confidence: float


@dataclass(frozen=True)
class AnalysisResult:
    video: Path
    duration_s: float
    num_decoded: int
    num_analysed: int
    num_bad_packets: int
    persons: tuple[str, ...]
    changes: tuple[StateChange, ...]
    segments: tuple[Segment, ...]
    scores: tuple[Scores, ...]
    stats: InferenceStats
    #: Written files by kind: ``csv``, ``json``, ``png``, ``scores``.
    outputs: dict[str, Path] = field(default_factory=dict)


STATE_COLOURS = {
    EngagementState.INTERESTED: "#2ca02c",
    EngagementState.BORED: "#ff7f0e",
    EngagementState.CONFUSED: "#d62728",
    EngagementState.NO_FACE: "#bbbbbb",
}


def write_outputs(result: AnalysisResult, out_dir: Path) -> dict[str, Path]:
    """The timeline as CSV (one row per segment) and JSON, the scores as CSV, a PNG plot."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out_dir / "timeline.csv",
        "json": out_dir / "timeline.json",
        "scores": out_dir / "scores.csv",
        "png": out_dir / "timeline.png",
    }
    with paths["csv"].open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["person_id", "state", "start_s", "end_s", "confidence"])
        for s in result.segments:
            writer.writerow(
                [
                    s.person_id,
                    s.state.value,
                    f"{s.start_s:.3f}",
                    f"{s.end_s:.3f}",
                    f"{s.confidence:.4f}",
                ]
            )
    with paths["scores"].open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["person_id", "t", *CLASSES])
        for sc in result.scores:
            writer.writerow([sc.person_id, f"{sc.t:.3f}", *(f"{p:.4f}" for p in sc.as_tuple())])
    stats = asdict(result.stats)
    stats["dropped"] = result.stats.dropped
    document = {
        "video": str(result.video),
        "duration_s": round(result.duration_s, 3),
        "frames_decoded": result.num_decoded,
        "frames_analysed": result.num_analysed,
        "damaged_packets": result.num_bad_packets,
        "inference": stats,
        "persons": {
            person_id: {
                "segments": [
                    {
                        "state": s.state.value,
                        "start_s": round(s.start_s, 3),
                        "end_s": round(s.end_s, 3),
                        "confidence": s.confidence,
                    }
                    for s in result.segments
                    if s.person_id == person_id
                ],
                "changes": [
                    {"t": round(c.t, 3), "state": c.state.value, "confidence": c.confidence}
                    for c in result.changes
                    if c.person_id == person_id
                ],
            }
            for person_id in result.persons
        },
    }
    paths["json"].write_text(json.dumps(document, indent=2) + "\n")
    plot_timeline(result, paths["png"])
    return paths


def plot_timeline(result: AnalysisResult, path: Path) -> None:
    """One row per person, coloured by state, over the video's seconds."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Patch

    persons = list(result.persons) or ["(nobody)"]
    figure, axes = plt.subplots(figsize=(10, 1.0 + 0.5 * len(persons)), layout="constrained")
    for row, person_id in enumerate(persons):
        for state, colour in STATE_COLOURS.items():
            spans = [
                (s.start_s, s.end_s - s.start_s)
                for s in result.segments
                if s.person_id == person_id and s.state is state
            ]
            axes.broken_barh(spans, (row - 0.4, 0.8), color=colour)
    axes.set_yticks(range(len(persons)), persons)
    axes.set_ylim(-0.6, len(persons) - 0.4)
    axes.invert_yaxis()
    axes.set_xlim(0, max(result.duration_s, 1e-3))
    axes.set_xlabel("seconds")
    axes.set_title(f"{result.video.name}: engagement per person")
    axes.legend(
        handles=[Patch(color=c, label=s.value) for s, c in STATE_COLOURS.items()],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.35 if len(persons) < 3 else -0.12),
        ncol=4,
        frameon=False,
    )
    figure.savefig(path, dpi=100)
    plt.close(figure)
