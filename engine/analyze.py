"""Offline analysis (``classpulse analyze VIDEO``, ``bot.cli.analyze``): a recorded class →
per-person timeline files.

Any file PyAV reads is decoded once; frames are sampled at the analysis rate, faces found and
tracked, crops scored by the inference process (which is restarted if it dies), and the scores
smoothed into state changes exactly as in a live meeting: the same ``SourceAnalyser`` and
``PersonStates`` (``engine.frame_path``) the bot runs. Nothing waits on a clock, and no frame
is dropped: when inference is behind, decoding waits for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import av

from engine.faces import DetectorSettings, FaceDetector, SourceAnalyser
from engine.frame_path import ClientScorer, PersonStates
from engine.inference import InferenceSettings
from engine.inference_client import InferenceClient
from engine.states import StateSettings
from engine.timeline import AnalysisResult, Segment, write_outputs
from engine.types import PersonAbsent, Scores, StateChange

#: Consecutive undecodable packets after which a file is treated as unreadable from there on.
_MAX_BAD_PACKETS = 100
#: Largest frame analysed: 4K UHD. A bigger frame (an 8K screen capture, a crafted file) costs
#: hundreds of MB per gray copy for faces that 4K already shows; ``--max-pixels`` raises it.
MAX_FRAME_PIXELS = 3840 * 2160


class AnalysisError(Exception):
    """The video cannot be analysed (unreadable, no video stream, no decodable frame)."""


def analyze_video(
    video: str | Path,
    out_dir: str | Path | None = None,
    *,
    fps: float = 5.0,
    detector: DetectorSettings | None = None,
    states: StateSettings | None = None,
    inference: InferenceSettings | None = None,
    client: InferenceClient | None = None,
    progress: bool = False,
    on_frame: Callable[[int, float], None] | None = None,
    max_pixels: int = MAX_FRAME_PIXELS,
) -> AnalysisResult:
    """Analyse ``video``; write ``timeline.csv``, ``timeline.json``, ``timeline.png`` and
    ``scores.csv`` into ``out_dir`` (nothing is written when it is ``None``).

    ``client`` lets callers share one running inference process; otherwise one is started and
    closed here. ``on_frame(index, t)`` is called for every decoded frame. A frame of more
    than ``max_pixels`` pixels raises ``AnalysisError`` (checked before decoding, from the
    stream's header, and again for every frame: a stream may change size).
    """
    video = Path(video)
    container = _open(video)
    try:
        stream = container.streams.video[0]
        _check_size(video, stream.codec_context.width, stream.codec_context.height, max_pixels)
        stream.thread_type = "AUTO"
        own_client = client is None
        if client is None:
            settings = inference or InferenceSettings()
            # Offline, waiting beats dropping: no frame is too old, submit blocks when full.
            client = InferenceClient(replace(settings, max_age_s=None)).start()
        try:
            return _run(
                video,
                container,
                stream,
                out_dir,
                fps,
                detector,
                states,
                client,
                progress,
                on_frame,
                max_pixels,
            )
        finally:
            if own_client:
                client.close()
    finally:
        container.close()


def _open(video: Path) -> Any:
    if not video.is_file():
        raise AnalysisError(f"Expected a video file. Received: {video} (no such file)")
    try:
        container = av.open(str(video))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise AnalysisError(
            f"Expected a video file PyAV can read. Received: {video} ({_reason(error)})"
        ) from None
    if not container.streams.video:
        container.close()
        raise AnalysisError(f"Expected a file with a video stream. Received: {video} (none)")
    return container


def _check_size(video: Path, width: int | None, height: int | None, max_pixels: int) -> None:
    if width and height and width * height > max_pixels:
        raise AnalysisError(
            f"Expected frames of at most {max_pixels} pixels (3840×2160 by default; "
            f"--max-pixels to raise it). Received: {width}×{height} in {video.name}"
        )


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def _run(
    video: Path,
    container: Any,
    stream: Any,
    out_dir: str | Path | None,
    fps: float,
    detector_settings: DetectorSettings | None,
    state_settings: StateSettings | None,
    client: InferenceClient,
    progress: bool,
    on_frame: Callable[[int, float], None] | None,
    max_pixels: int = MAX_FRAME_PIXELS,
) -> AnalysisResult:
    from tqdm import tqdm

    analyser = SourceAnalyser(FaceDetector(detector_settings), "person", fps)
    # Offline, waiting beats dropping: a full inference queue makes decoding wait.
    states = PersonStates(ClientScorer(client, block=True), state_settings)
    rate = float(stream.average_rate or stream.guessed_rate or 25)
    seconds = (
        float(stream.duration * stream.time_base)
        if stream.duration and stream.time_base
        else (container.duration or 0) / 1_000_000  # av.time_base: microseconds
    )
    total = stream.frames or (round(seconds * rate) or None)
    absences: list[PersonAbsent] = []
    scores: list[Scores] = []
    num_decoded = num_analysed = bad_packets = bad_run = 0
    first_t: float | None = None
    last_t = 0.0
    with tqdm(total=total, unit="frame", desc=video.name, disable=not progress, leave=False) as bar:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
                bad_run = 0
            except av.FFmpegError:
                bad_packets += 1  # a damaged packet: the decoder resynchronises on the next one
                bad_run += 1
                if bad_run > _MAX_BAD_PACKETS:
                    break
                continue
            for frame in frames:
                _check_size(video, frame.width, frame.height, max_pixels)
                raw_t = frame.time if frame.time is not None else num_decoded / rate
                first_t = raw_t if first_t is None else first_t
                t = max(0.0, float(raw_t - first_t))
                if on_frame is not None:
                    on_frame(num_decoded, t)
                num_decoded += 1
                last_t = max(last_t, t)
                bar.update(1)
                if not analyser.due(t):
                    continue
                num_analysed += 1
                found = analyser.analyse(frame, t)
                for crop in found.crops:
                    states.face(crop.person_id, crop)
                absences.extend(found.absent)
                scores.extend(client.get_scores(0.0))
    if num_decoded == 0:
        raise AnalysisError(
            f"Expected a video with decodable frames. Received: {video} "
            f"({bad_packets} damaged packets, no frame)"
        )
    client.flush()
    scores.extend(client.get_scores(0.0))
    duration_s = last_t + 1.0 / rate
    changes = _changes(states, scores, absences)
    segments = _segments(changes, duration_s)
    persons = tuple(sorted({c.person_id for c in changes} | {s.person_id for s in scores}))
    for person_id in persons:
        states.forget(person_id)  # a shared client must not carry windows over
    result = AnalysisResult(
        video,
        duration_s,
        num_decoded,
        num_analysed,
        bad_packets,
        persons,
        tuple(changes),
        tuple(segments),
        tuple(sorted(scores, key=lambda s: (s.person_id, s.t))),
        client.stats(),
    )
    if out_dir is not None:
        result.outputs.update(write_outputs(result, Path(out_dir)))
    return result


def _changes(
    states: PersonStates, scores: Sequence[Scores], absences: Sequence[PersonAbsent]
) -> list[StateChange]:
    """Replay scores and absences in time order through the same smoothing as a live meeting
    (scores come back later than the frames that followed them: the order is restored here)."""
    events: list[tuple[float, int, Scores | PersonAbsent]] = [(s.t, 1, s) for s in scores]
    events += [(a.t, 0, a) for a in absences]
    changes = []
    for _, _, event in sorted(events, key=lambda e: (e[0], e[1])):
        change = (
            states.scores(event)
            if isinstance(event, Scores)
            else states.absent(event.person_id, event.t)
        )
        if change is not None:
            changes.append(change)
    return changes


def _segments(changes: Sequence[StateChange], end_s: float) -> list[Segment]:
    by_person: dict[str, list[StateChange]] = {}
    for change in changes:
        by_person.setdefault(change.person_id, []).append(change)
    segments = []
    for person_id, own in sorted(by_person.items()):
        for change, following in zip(own, [*own[1:], None], strict=True):
            end = following.t if following is not None else end_s
            segments.append(
                Segment(person_id, change.state, change.t, max(end, change.t), change.confidence)
            )
    return segments
