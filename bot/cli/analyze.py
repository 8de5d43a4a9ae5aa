"""``classpulse analyze VIDEO``: parses the flags and calls ``engine.analyze.analyze_video``."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.analyze import MAX_FRAME_PIXELS, AnalysisError, analyze_video
from engine.faces import STAGES, DetectorSettings
from engine.inference import InferenceSettings

_DESCRIPTION = "Analyse a video file offline: faces, states per person, timeline files."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, help="any video file FFmpeg (PyAV) can read")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for timeline.csv/.json/.png and scores.csv (default: ./VIDEO_NAME.classpulse)",
    )
    parser.add_argument("--fps", type=float, default=5.0, help="analysed frames per second (5)")
    parser.add_argument(
        "--detect-width",
        type=int,
        default=DetectorSettings.detect_width,
        help="width (px) Haar searches faces at; raise for small faces in wide "
        f"shots (default {DetectorSettings.detect_width})",
    )
    parser.add_argument(
        "--face-stage",
        choices=STAGES,
        default=DetectorSettings.stage,
        help="haar: Haar detection and template following; landmarks: BlazeFace and the face "
        "mesh on every frame (head pose, eyes; ~20x the cost); hybrid: BlazeFace, template "
        "following and the mesh once a second, Haar-framed crops "
        f"(default {DetectorSettings.stage})",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=MAX_FRAME_PIXELS,
        help=f"refuse frames larger than this many pixels (default {MAX_FRAME_PIXELS}: 4K UHD)",
    )
    parser.add_argument("--model", type=Path, default=None, help="model file (default: shipped)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """``classpulse analyze``: for ``bot.cli``'s subcommands."""
    parser = subparsers.add_parser(
        "analyze",
        help="a recorded class → per-person engagement timeline (CSV, JSON, PNG)",
        description=_DESCRIPTION,
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``analyze`` from parsed arguments; one line on stderr and exit code 1 on failure."""
    out_dir = args.out or Path.cwd() / f"{args.video.name}.classpulse"
    try:
        if not (math.isfinite(args.fps) and args.fps > 0):
            raise AnalysisError(f"Expected --fps > 0. Received: {args.fps}")
        result = analyze_video(
            args.video,
            out_dir,
            fps=args.fps,
            detector=DetectorSettings(detect_width=args.detect_width, stage=args.face_stage),
            max_pixels=args.max_pixels,
            inference=InferenceSettings(model_path=str(args.model) if args.model else None),
            progress=not args.quiet,
        )
    except (AnalysisError, ValueError, FileNotFoundError, OSError, RuntimeError) as error:
        print(f"classpulse analyze: error: {error}", file=sys.stderr)
        return 1
    if not args.quiet:
        dropped = result.stats.dropped
        print(
            f"{result.video.name}: {result.duration_s:.1f} s, {result.num_analysed} frames "
            f"analysed, {len(result.persons)} person(s), {len(result.changes)} state changes"
            + (
                f", {dropped} frames lost to {result.stats.restarts} inference restart(s)"
                if dropped
                else ""
            )
        )
        for kind, path in result.outputs.items():
            print(f"  {kind:6} {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="classpulse analyze", description=_DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
