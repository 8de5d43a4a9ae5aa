"""Face finding and tracking on rendered frames and encoded clips of JAFFE faces (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from engine.faces import DetectorSettings, FaceDetector, FrameSampler, gray_from_frame
from engine.landmarks.hybrid import HybridFaceStream
from engine.types import Box
from tests.engine.clips import Appearance, jaffe_face, make_clip, render_frame


@pytest.fixture(scope="module", params=["haar", "hybrid"])
def detector(request: pytest.FixtureRequest) -> FaceDetector:
    """Both stages that follow faces between checks behave alike on these clips."""
    return FaceDetector(DetectorSettings(stage=request.param))


def centre(box: Box) -> tuple[float, float]:
    return box.x + box.width / 2, box.y + box.height / 2


def run_stream(detector: FaceDetector, frames: list[tuple[float, np.ndarray]]):
    stream = detector.stream("cam")
    return stream, [(t, stream.push(gray, t)) for t, gray in frames]


def rendered(appearances, duration_s, width=640, height=360, fps=5.0, black=()):
    rng = np.random.default_rng(0)
    frames = []
    for index in range(round(duration_s * fps)):
        t = index / fps
        dark = any(a <= t < b for a, b in black)
        frames.append((t, render_frame(width, height, t, appearances, rng, black=dark)))
    return frames


def test_sampler_takes_every_third_frame_of_15_fps() -> None:
    sampler = FrameSampler(5.0)
    taken = [i for i in range(45) if sampler.take(i / 15)]
    assert taken == list(range(0, 45, 3))


def test_sampler_survives_jitter_gaps_and_a_clock_going_back() -> None:
    sampler = FrameSampler(5.0)
    rng = np.random.default_rng(1)
    times = np.arange(0, 10, 1 / 30) + rng.uniform(-0.01, 0.01, 300)
    assert 48 <= sum(sampler.take(float(t)) for t in times) <= 51
    assert sampler.take(60.0)  # a 50 s gap
    assert sampler.take(0.0)  # a restarted clock
    assert not sampler.take(0.05)


def test_gray_from_frame_is_the_luma_plane(jaffe_dir: Path, tmp_path: Path) -> None:
    gray = render_frame(322, 182, 0.0, [], np.random.default_rng(0))  # odd stride on purpose
    frame = av.VideoFrame.from_ndarray(gray, format="gray").reformat(format="yuv420p")
    luma = gray_from_frame(frame)
    assert luma.shape == (182, 322)
    assert np.array_equal(luma, frame.to_ndarray()[:182])
    rgb = av.VideoFrame.from_ndarray(np.dstack([gray] * 3), format="rgb24")
    assert np.abs(gray_from_frame(rgb).astype(int) - gray).max() <= 1


def test_one_face_gives_one_person_with_crops_every_frame(
    detector: FaceDetector, jaffe_dir: Path
) -> None:
    face = Appearance(jaffe_face(jaffe_dir, "KA", "NE"), 0.0, 10.0, cx=0.45)
    stream, results = run_stream(detector, rendered([face], 10.0))
    ids = {crop.person_id for _, r in results for crop in r.crops}
    assert ids == {"cam/1"}
    with_crop = sum(1 for _, r in results if r.crops)
    assert with_crop >= 0.9 * len(results)
    for _, r in results:
        assert r.absent == ()
        for crop in r.crops:
            assert crop.crop.shape == (48, 48) and crop.crop.dtype == np.uint8
            x, y = centre(crop.box)
            assert abs(x - 0.45 * 640) < 40 and abs(y - 180) < 40
    # Tracking between full detections: most frames use no full-frame search.
    checks = stream.num_mesh if isinstance(stream, HybridFaceStream) else stream.num_refine
    assert stream.num_full <= 3 and stream.num_tracked >= 25 and checks <= 15


def test_two_faces_in_one_tile_stay_two_persons(detector: FaceDetector, jaffe_dir: Path) -> None:
    faces = [
        Appearance(jaffe_face(jaffe_dir, "KA", "HA"), 0.0, 12.0, cx=0.27, size=0.5),
        Appearance(jaffe_face(jaffe_dir, "KM", "SU"), 0.0, 12.0, cx=0.73, size=0.45),
    ]
    _, results = run_stream(detector, rendered(faces, 12.0))
    sides: dict[str, set[str]] = {}
    for _, r in results:
        for crop in r.crops:
            sides.setdefault(crop.person_id, set()).add(
                "left" if centre(crop.box)[0] < 320 else "right"
            )
        assert r.absent == ()
    assert len(sides) == 2
    assert sorted(next(iter(s)) for s in sides.values() if len(s) == 1) == ["left", "right"]
    counts = {
        pid: sum(1 for _, r in results for c in r.crops if c.person_id == pid) for pid in sides
    }
    assert min(counts.values()) >= 0.85 * len(results)


def test_face_that_leaves_and_returns_is_the_same_person(
    detector: FaceDetector, jaffe_dir: Path
) -> None:
    image = jaffe_face(jaffe_dir, "YM", "NE")
    faces = [Appearance(image, 0.0, 4.0, cx=0.4), Appearance(image, 9.0, 14.0, cx=0.6)]
    _, results = run_stream(detector, rendered(faces, 14.0))
    absent = [(t, a) for t, r in results for a in r.absent]
    assert len(absent) == 1
    t_lost, event = absent[0]
    assert event.person_id == "cam/1" and event.last_seen_t is not None
    assert 4.0 <= t_lost <= 4.0 + 1.5 + 0.6
    back = [t for t, r in results if t >= 9.0 and r.crops]
    assert back and back[0] <= 9.0 + 1.2  # found again within about a second (search interval)
    assert {c.person_id for _, r in results for c in r.crops} == {"cam/1"}


def test_black_frames_and_faceless_video_give_absence_not_faces(
    detector: FaceDetector, jaffe_dir: Path
) -> None:
    face = Appearance(jaffe_face(jaffe_dir, "KR", "NE"), 0.0, 12.0)
    _, results = run_stream(detector, rendered([face], 12.0, black=[(3.0, 8.0)]))
    assert all(not r.crops for t, r in results if 3.0 <= t < 8.0)
    assert [a.person_id for _, r in results for a in r.absent] == ["cam/1"]
    assert any(r.crops for t, r in results if t >= 9.0)

    _, results = run_stream(detector, rendered([], 5.0))
    assert all(not r.crops for _, r in results)
    absent = [(t, a) for t, r in results for a in r.absent]
    assert [(a.person_id, a.last_seen_t) for _, a in absent] == [("cam/1", None)]
    assert absent[0][0] == pytest.approx(1.6)


def test_4k_and_tiny_frames(detector: FaceDetector, jaffe_dir: Path) -> None:
    face = Appearance(jaffe_face(jaffe_dir, "NA", "HA"), 0.0, 3.0, cx=0.6, size=0.4)
    _, results = run_stream(detector, rendered([face], 3.0, width=3840, height=2160))
    boxes = [c.box for _, r in results for c in r.crops]
    assert len(boxes) >= 12
    x, y = centre(boxes[0])
    assert abs(x - 0.6 * 3840) < 200 and abs(y - 1080) < 200 and boxes[0].width > 400
    for width, height in ((16, 16), (40, 24), (1, 1)):
        _, results = run_stream(detector, rendered([face], 2.0, width=width, height=height))
        assert all(not r.crops for _, r in results)


def test_small_faces_need_a_wider_detect_width(jaffe_dir: Path) -> None:
    # A wide classroom shot with a face 12 % of the frame height: too small at 256 px wide.
    face = Appearance(jaffe_face(jaffe_dir, "TM", "NE"), 0.0, 2.0, cx=0.3, size=0.12)
    frames = rendered([face], 1.0, width=1920, height=1080)
    assert FaceDetector().detect(frames[0][1]) == []
    assert len(FaceDetector(DetectorSettings(detect_width=960)).detect(frames[0][1])) == 1


def test_decoded_clip_frames_feed_the_stream(
    detector: FaceDetector, jaffe_dir: Path, tmp_path: Path
) -> None:
    face = Appearance(jaffe_face(jaffe_dir, "UY", "NE"), 0.0, 4.0)
    clip = make_clip(tmp_path / "one.webm", [face], 4.0)
    stream, sampler = detector.stream("cam"), FrameSampler(5.0)
    crops = 0
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            if sampler.take(float(frame.time)):
                crops += len(stream.push(gray_from_frame(frame), float(frame.time)).crops)
    assert crops >= 18


def test_bad_inputs_are_refused(detector: FaceDetector) -> None:
    stream = detector.stream("cam")
    with pytest.raises(ValueError, match="Received: dtype=float32"):
        stream.push(np.zeros((10, 10), np.float32), 0.0)
    with pytest.raises(ValueError, match="2-D uint8"):
        stream.push(np.zeros((10, 10, 3), np.uint8), 0.0)
    with pytest.raises(ValueError, match="detect_width"):
        DetectorSettings(detect_width=8)
    with pytest.raises(FileNotFoundError, match=r"nope\.xml"):
        FaceDetector(DetectorSettings(cascade="nope.xml"))
