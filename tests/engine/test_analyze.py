"""``classpulse analyze`` end to end on clips made at test time (an untrained model)."""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from pathlib import Path

import pytest

from bot.cli.analyze import main
from engine.analyze import AnalysisError, analyze_video
from engine.inference import InferenceSettings
from engine.inference_client import InferenceClient
from engine.types import EngagementState
from tests.engine.clips import Appearance, jaffe_face, make_clip

NO_FACE = EngagementState.NO_FACE
MODEL_STATES = {EngagementState.INTERESTED, EngagementState.BORED, EngagementState.CONFUSED}


def states_of(result, person_id: str) -> list[tuple[float, EngagementState]]:
    return [(c.t, c.state) for c in result.changes if c.person_id == person_id]


def test_two_faces_give_two_timelines_and_all_output_files(
    jaffe_dir: Path, tmp_path: Path, offline_client: InferenceClient
) -> None:
    faces = [
        Appearance(jaffe_face(jaffe_dir, "KA", "NE"), 0.0, 6.0, cx=0.27, size=0.5),
        Appearance(jaffe_face(jaffe_dir, "KM", "HA"), 0.0, 6.0, cx=0.73, size=0.5),
    ]
    clip = make_clip(tmp_path / "two.webm", faces, 6.0, fps=10)
    result = analyze_video(clip, tmp_path / "out", client=offline_client)
    assert result.persons == ("person/1", "person/2")
    assert result.num_decoded == 60 and result.num_analysed == 30
    for person in result.persons:
        assert len([s for s in result.scores if s.person_id == person]) >= 27
        assert {state for _, state in states_of(result, person)} <= MODEL_STATES
    assert result.stats.dropped == 0
    with result.outputs["csv"].open() as file:
        rows = list(csv.DictReader(file))
    assert {row["person_id"] for row in rows} == {"person/1", "person/2"}
    assert all(float(row["start_s"]) <= float(row["end_s"]) <= 6.0 for row in rows)
    document = json.loads(result.outputs["json"].read_text())
    assert set(document["persons"]) == {"person/1", "person/2"}
    assert document["frames_analysed"] == 30
    assert result.outputs["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with result.outputs["scores"].open() as file:
        assert next(csv.reader(file)) == ["person_id", "t", "interested", "bored", "confused"]


def test_face_leaving_black_frames_and_returning(
    jaffe_dir: Path, tmp_path: Path, offline_client: InferenceClient
) -> None:
    image = jaffe_face(jaffe_dir, "NM", "NE")
    faces = [Appearance(image, 0.0, 4.0, cx=0.4), Appearance(image, 8.0, 13.0, cx=0.55)]
    clip = make_clip(tmp_path / "leave.webm", faces, 13.0, fps=10, black=[(5.0, 7.0)])
    result = analyze_video(clip, None, client=offline_client)
    assert result.persons == ("person/1",)
    timeline = states_of(result, "person/1")
    kinds = ["face" if state in MODEL_STATES else "none" for _, state in timeline]
    assert kinds[0] == "face" and kinds[-1] == "face"
    assert "none" in kinds and kinds.count("none") == 1
    gone = next(t for t, state in timeline if state is NO_FACE)
    back = next(t for t, state in timeline if t > gone and state in MODEL_STATES)
    assert 4.0 <= gone <= 6.0 and 8.0 <= back <= 10.0
    # No crop of the empty or black frames was scored.
    assert not [s for s in result.scores if 4.2 <= s.t < 8.0]


def test_video_without_faces_and_tiny_frames_are_no_face(
    tmp_path: Path, offline_client: InferenceClient
) -> None:
    for name, size in (("empty.webm", (640, 360)), ("tiny.webm", (32, 32))):
        clip = make_clip(tmp_path / name, [], 4.0, width=size[0], height=size[1], fps=10)
        result = analyze_video(clip, tmp_path / name.replace(".", "_"), client=offline_client)
        assert result.scores == ()
        assert states_of(result, "person/1") == [(pytest.approx(1.6), NO_FACE)]
        assert result.segments[0].end_s == pytest.approx(4.0)


def test_4k_video(jaffe_dir: Path, tmp_path: Path, offline_client: InferenceClient) -> None:
    face = Appearance(jaffe_face(jaffe_dir, "YM", "HA"), 0.0, 3.0, cx=0.6, size=0.4)
    clip = make_clip(
        tmp_path / "4k.mp4",
        [face],
        3.0,
        width=3840,
        height=2160,
        fps=5,
        codec="mpeg4",
        bit_rate=4_000_000,
    )
    result = analyze_video(clip, None, client=offline_client)
    assert result.persons == ("person/1",)
    assert len(result.scores) >= 12
    assert states_of(result, "person/1")[0][1] in MODEL_STATES


def test_analysis_resumes_after_the_inference_process_is_killed(
    jaffe_dir: Path, tmp_path: Path, random_model_path: Path
) -> None:
    face = Appearance(jaffe_face(jaffe_dir, "TM", "SU"), 0.0, 12.0)
    clip = make_clip(tmp_path / "kill.webm", [face], 12.0, fps=10)
    settings = InferenceSettings(model_path=str(random_model_path), max_age_s=None)
    with InferenceClient(settings) as client:
        killed: list[int] = []

        def kill_at_frame_40(index: int, t: float) -> None:
            if index == 40 and client.pid is not None:
                killed.append(client.pid)
                os.kill(client.pid, signal.SIGKILL)
                # Decode on only once the client has noticed, so that frames 41..59 are the
                # "after the kill" this test is about (on a busy machine decoding may otherwise
                # finish before the worker sends its next batch to the dead process).
                deadline = time.monotonic() + 60
                while client.stats().restarts < 1 and time.monotonic() < deadline:
                    time.sleep(0.05)

        result = analyze_video(clip, None, client=client, on_frame=kill_at_frame_40)
    assert killed and result.stats.restarts == 1
    # Only the batch in flight at the kill may be lost; everything after it is scored.
    assert len(result.scores) + result.stats.dropped_restart >= 58
    assert max(s.t for s in result.scores) >= 11.5
    assert result.num_analysed == 60


def test_cli_writes_files_and_prints_a_summary(
    jaffe_dir: Path, tmp_path: Path, random_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    face = Appearance(jaffe_face(jaffe_dir, "KL", "NE"), 0.0, 3.0)
    clip = make_clip(tmp_path / "cli.webm", [face], 3.0, fps=10)
    out = tmp_path / "report"
    code = main([str(clip), "--out", str(out), "--model", str(random_model_path), "--quiet"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "scores.csv",
        "timeline.csv",
        "timeline.json",
        "timeline.png",
    ]


def test_cli_face_stage_is_passed_through(
    jaffe_dir: Path, tmp_path: Path, random_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    face = Appearance(jaffe_face(jaffe_dir, "KL", "NE"), 0.0, 3.0)
    clip = make_clip(tmp_path / "stage.webm", [face], 3.0, fps=10)
    args = [str(clip), "--model", str(random_model_path), "--face-stage", "hybrid"]
    assert main([*args, "--out", str(tmp_path / "hybrid")]) == 0
    document = json.loads((tmp_path / "hybrid" / "timeline.json").read_text())
    assert set(document["persons"]) == {"person/1"}
    with pytest.raises(SystemExit) as exit_info:
        main([str(clip), "--face-stage", "dlib"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'dlib'" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["missing", "random-bytes", "text", "no-video", "truncated"])
def test_unreadable_files_give_one_line_and_exit_code_1(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], random_model_path: Path
) -> None:
    path = tmp_path / "class.mp4"
    if kind == "random-bytes":
        path.write_bytes(os.urandom(50_000))
    elif kind == "text":
        path.write_text("this is not a video\n" * 100)
    elif kind == "no-video":
        import av

        with av.open(str(path), "w", format="mp4") as container:
            stream = container.add_stream("aac", rate=16000)
            for packet in stream.encode(None):
                container.mux(packet)
    elif kind == "truncated":
        good = make_clip(tmp_path / "good.webm", [], 2.0, fps=10)
        path.write_bytes(good.read_bytes()[:300])
    code = main([str(path), "--out", str(tmp_path / "out"), "--model", str(random_model_path)])
    captured = capsys.readouterr()
    assert code == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert lines[0].startswith("classpulse analyze: error: Expected")
    assert "Received:" in lines[0]


def test_analysis_error_is_raised_for_library_callers(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="no such file"):
        analyze_video(tmp_path / "nope.webm", None)


def test_frames_over_the_resolution_limit_are_refused_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = make_clip(tmp_path / "wide.webm", [], 1.0, fps=5)  # 640×360 = 230,400 pixels
    code = main([str(clip), "--out", str(tmp_path / "out"), "--max-pixels", "100000"])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err
    line = captured.err.strip()
    assert line.startswith("classpulse analyze: error: Expected frames of at most 100000 pixels")
    assert line.endswith("Received: 640×360 in wide.webm")
    assert not (tmp_path / "out").exists()
    with pytest.raises(AnalysisError, match="640×360"):
        analyze_video(clip, None, max_pixels=640 * 359)
